"""Tables printed on the terminal: rich on a terminal, plain aligned text otherwise (piped or
redirected output keeps every name whole)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from reslab.errors import ConfigError
from reslab.models import get_spec, list_models
from reslab.models import pretrained as shipped_weights
from reslab.models.costs import costs

COLUMNS = (
    ("name", "left"),
    ("family", "left"),
    ("params", "right"),
    ("GFLOPs", "right"),
    ("input", "right"),
    ("paper error %", "right"),
    ("reslab error %", "right"),
)


def _reslab_errors() -> dict[str, str]:
    """Each model's shipped default weights: their test error, and on which data."""
    errors = {}
    for w in shipped_weights.shipped().values():
        m = w.manifest
        if m["default"] or m["model"] not in errors:
            errors[m["model"]] = f"{100 * (1 - m['test_acc']):.2f}"
    return errors


def model_rows(pattern: str = "*") -> list[list[str]]:
    names = list_models(pattern)
    if not names:
        raise ConfigError(f"no registered model matches {pattern!r}; try `reslab models` for all")
    ours = _reslab_errors()
    rows = []
    for name in names:
        spec, cost = get_spec(name), costs(name)
        c, h, w = spec.input_size
        err = spec.reference_error
        rows.append(
            [
                name,
                spec.family,
                f"{cost['params']:,}",
                f"{cost['flops'] / 1e9:.3g}",
                f"{c}x{h}x{w}",
                "-" if err is None else f"{err:.2f}",
                ours.get(name, "-"),
            ]
        )
    return rows


def models_table(pattern: str = "*", console: Console | None = None) -> None:
    rows = model_rows(pattern)
    console = console or Console()
    if not console.is_terminal:
        widths = [max(len(col), *(len(r[i]) for r in rows)) for i, (col, _) in enumerate(COLUMNS)]
        for cells in ([c for c, _ in COLUMNS], *rows):
            just = [
                cell.ljust(w) if j == "left" else cell.rjust(w)
                for cell, w, (_, j) in zip(cells, widths, COLUMNS, strict=True)
            ]
            sys.stdout.write("  ".join(just).rstrip() + "\n")
        _footnote(sys.stdout.write)
        return
    table = Table(title=None, box=None, header_style="bold")
    for col, just in COLUMNS:
        table.add_column(col, justify=just, no_wrap=True)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    _footnote(lambda text: console.print(text.rstrip()))


def _footnote(write) -> None:
    write(
        "paper error: CIFAR-10 test error as published (ImageNet: torchvision's top-1); reslab "
        "error: reslab's shipped weights on the JPEG copy of CIFAR-10 (docs/pretrained.md)\n"
    )
