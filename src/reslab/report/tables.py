"""Tables printed on the terminal (rich when it is a terminal, plain text otherwise)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from reslab.errors import ConfigError
from reslab.models import list_models, model_info
from reslab.models.flops import count_flops


def models_table(pattern: str = "*", flops: bool = True, console: Console | None = None) -> None:
    names = list_models(pattern)
    if not names:
        raise ConfigError(f"no registered model matches {pattern!r}; try `reslab models` for all")
    table = Table(title=None, box=None, header_style="bold")
    for col, just in (
        ("name", "left"),
        ("family", "left"),
        ("params", "right"),
        ("GFLOPs", "right"),
        ("input", "right"),
        ("ref. error %", "right"),
    ):
        table.add_column(col, justify=just)
    for name in names:
        info = model_info(name)
        gflops = f"{count_flops(name) / 1e9:.2f}" if flops else "-"
        c, h, w = info["input_size"]
        err = info["reference_error"]
        table.add_row(
            name,
            info["family"],
            f"{info['params']:,}",
            gflops,
            f"{c}x{h}x{w}",
            "-" if err is None else f"{err:.2f}",
        )
    (console or Console()).print(table)
