"""The package's layering holds: no import cycle (imports inside functions count; imports under
`if TYPE_CHECKING:` do not), and no module imports from a layer above its own or from another
package of its own layer. The layers are read from CONTRIBUTING.md's diagram, their one owner."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def layers() -> dict[str, int]:
    """Package -> layer (0 at the bottom), from the diagram's line `a, b  ->  c  ->  ...`."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    line = next(s for s in text.splitlines() if s.strip().startswith("errors") and "->" in s)
    return {
        name.strip(): i
        for i, group in enumerate(line.split("->"))
        for name in group.split(",")
        if name.strip()
    }


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every reslab name `module` imports from, at any depth, TYPE_CHECKING blocks left out:
    `from a.b import c` counts as an import of a.b.c where that is a module, else of a.b."""
    found: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package[: len(package) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m.startswith("reslab")}


def graph() -> dict[str, set[str]]:
    """Module -> the reslab modules it imports. A package's __init__ re-exporting its own
    submodules is not an edge: importing the package runs it either way."""
    files = {}
    for path in sorted((SRC / "reslab").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path

    def module_of(name: str) -> str:
        while name not in files:  # `from a.b import function`: the module is a.b
            name = name.rpartition(".")[0]
        return name

    g = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        found = _imports(ast.parse(path.read_text()), name, is_package)
        targets = {module_of(m) for m in found} - {name}
        g[name] = {m for m in targets if not (is_package and m.startswith(name + "."))}
    return g


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "reslab"


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            strong(v)
    return out


def violations(g: dict[str, set[str]], layer: dict[str, int]) -> list[str]:
    """Imports that reach up a layer, or across to another package of the same layer."""
    bad = []
    for module, imported in sorted(g.items()):
        mine = _package(module)
        if mine in ("reslab", "__main__", "cli"):  # the top: the facade and the command
            continue
        for other in sorted(imported):
            theirs = _package(other)
            if theirs != mine and layer[theirs] >= layer[mine]:
                bad.append(f"{module} -> {other} ({mine} is layer {layer[mine]}, {theirs} "
                           f"{layer[theirs]})")  # fmt: skip
    return bad


def test_the_diagram_names_every_package():
    names = {_package(m) for m in graph()} - {"reslab"}
    assert names == set(layers()) | {"__main__"} - {"reslab"}, names ^ set(layers())


def test_there_is_no_import_cycle():
    assert cycles(graph()) == []


def test_no_module_imports_from_above_or_across_its_layer():
    assert violations(graph(), layers()) == []


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert cycles(edges) == expected


def test_imports_inside_functions_count_and_type_checking_ones_do_not():
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from reslab.train import engine\n"
        "def f():\n    from reslab.run import config\n"
        "import reslab.models\n"
    )
    found = _imports(ast.parse(code), "reslab.data.sets", is_package=False)
    assert {"reslab.run.config", "reslab.models"} <= found
    assert not any(m.startswith("reslab.train") for m in found)
