"""Regenerate the docs' tables from the tables in the code that own the facts.

Each generated table sits between `<!-- generated: NAME -->` and `<!-- end generated -->` in a
docs page. `python scripts/gen_docs.py` rewrites them; `--check` exits 1 when a page is stale
(the test suite runs the check, so a new option cannot land undocumented).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from reslab.cli import CLI_FILE, describe_commands_json
from reslab.models.costs import COSTS_FILE
from reslab.models.layers import NORMS, SHORTCUTS
from reslab.report.markdown import markdown_table
from reslab.report.tables import COLUMNS, model_rows
from reslab.run.config import FIELDS, HINTS, describe, flag
from reslab.train.recipes import RECIPES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _type_name(kind) -> str:
    return getattr(kind, "__name__", str(kind))


def config_table() -> str:
    rows = []
    for name in FIELDS:
        flags = [flag(name), flag(name, False)] if HINTS[name] is bool else [flag(name)]
        spelled = " / ".join(f"`{f}`" for f in flags)
        rows.append([f"`{name}`", spelled, _type_name(HINTS[name]), describe(name)])
    return markdown_table(["key", "flag", "type", "meaning, allowed values, default"], rows)


def recipes_table() -> str:
    rows = []
    for r in RECIPES.values():
        settings = ", ".join(f"{k}={v}" for k, v in r.overrides.items()) or "the defaults"
        rows.append([f"`{r.name}`", settings, r.source])
    return markdown_table(["name", "settings", "source"], rows)


def shortcuts_table() -> str:
    return markdown_table(
        ["option", "skip path"], [[f"`{k}`", v.help] for k, v in SHORTCUTS.items()]
    )


def zoo_table() -> str:
    """Every registered model, as `reslab models` lists it."""
    return markdown_table([c for c, _ in COLUMNS], model_rows())


# The depth family: ResNet-20/32/44/56 trained with one recipe, length and precision, so that
# depth is the only change (docs/pretrained.md).
DEPTHS = (20, 32, 44, 56)
DEPTH_TAG = "onecycle40_full_c10jpeg"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h ({seconds:,.0f} s)"


def depth_table() -> str:
    """The shipped weights of the depth family, as their manifests record them."""
    from reslab.models import get_spec, pretrained
    from reslab.models.costs import costs

    shipped, rows = pretrained.shipped(), []
    for depth in DEPTHS:
        name = f"resnet{depth}"
        cost, paper = costs(name), get_spec(name).reference_error
        m = shipped.get(f"{name}.{DEPTH_TAG}", pretrained.Weights({})).manifest
        trained = [
            f"{100 * (1 - m['test_acc']):.2f} ({100 * m['test_acc']:.2f}% accuracy)",
            str(m["epochs"]),
            m["config"]["precision"],
            _hours(m["wall_time_s"]),
            m["device"],
        ] if m else ["not trained yet", "-", "-", "-", "-"]  # fmt: skip
        rows.append([f"`{name}.{DEPTH_TAG}`", f"{paper:.2f}", trained[0], f"{cost['params']:,}",
                     f"{cost['flops'] / 1e9:.3g}", *trained[1:]])  # fmt: skip
    columns = ["weights", "paper error % (original pixels)", "reslab error % (JPEG copy)",
               "params", "GFLOPs", "epochs", "precision", "training time", "machine"]  # fmt: skip
    return markdown_table(columns, rows)


def norms_table() -> str:
    rows = [[f"`{k}`", v.help, "yes" if v.layer1d else "no"] for k, v in NORMS.items()]
    return markdown_table(["value", "layer", "has a 1-d form"], rows)


TABLES = {
    "training.md": {"config": config_table, "recipes": recipes_table},
    "models.md": {"zoo": zoo_table, "shortcuts": shortcuts_table, "norms": norms_table},
    "pretrained.md": {"depth": depth_table},
}


def render(text: str, tables: dict) -> str:
    for name, make in tables.items():
        pattern = re.compile(
            rf"(<!-- generated: {name} -->\n).*?(<!-- end generated -->)", flags=re.S
        )
        if not pattern.search(text):
            raise SystemExit(f"no '<!-- generated: {name} -->' block to fill")
        table = make()
        text = pattern.sub(lambda m, table=table: m.group(1) + table + "\n" + m.group(2), text)
    return text


def costs_json() -> str:
    from reslab.models import list_models
    from reslab.models.costs import measure

    return json.dumps({name: measure(name) for name in list_models()}, indent=1) + "\n"


# Files written whole: path -> content maker. cli.json after costs.json, whose figures it shows.
FILES = {COSTS_FILE: costs_json, CLI_FILE: describe_commands_json}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a page is out of date")
    args = parser.parse_args(argv)
    stale = []
    for page, tables in TABLES.items():
        path = DOCS / page
        old = path.read_text()
        new = render(old, tables)
        if new != old:
            stale.append(page)
            if not args.check:
                path.write_text(new)
    for path, make in FILES.items() if not args.check else ():  # tests check these themselves
        new = make()
        if not path.is_file() or path.read_text() != new:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/gen_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
