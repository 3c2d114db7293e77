"""report.md for one or more runs: a table of results and the curves beside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reslab.io import atomic_write_text
from reslab.report.curves import plot_curves
from reslab.report.runs import RunRecord, load_run

COLUMNS = (
    "run",
    "model",
    "dataset",
    "norm",
    "optimizer",
    "lr",
    "epochs",
    "params",
    "best val acc",
    "test acc",
    "test top-5",
    "wall time",
    "images/s",
)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _row(run: RunRecord) -> list[str]:
    c, s = run.config, run.summary
    params = s.get("params")
    wall = s.get("wall_time_s")
    ips = s.get("images_per_s")
    return [
        run.name,
        str(s.get("model", c.get("model", "-"))),
        str(c.get("dataset", "-")),
        str(c.get("norm", "-")),
        str(c.get("optimizer", "-")),
        f"{c.get('lr', '-')}",
        str(s.get("epochs", len(run.metrics))),
        "-" if params is None else f"{params:,}",
        _pct(s.get("best_val_acc")),
        _pct(s.get("test_acc")),
        _pct(s.get("test_top5")),
        "-" if wall is None else f"{wall:.1f} s",
        "-" if ips is None else f"{ips:.0f}",
    ]


def table(runs: Sequence[RunRecord], columns=COLUMNS, row=_row) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in runs]
    return "\n".join(lines)


def _last_epochs(runs: Sequence[RunRecord]) -> str:
    lines = [
        "| run | epoch | step | train loss | train acc | val loss | val acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        if r.metrics:
            m = r.metrics[-1]
            val_loss = "-" if m.get("val_loss") is None else f"{m['val_loss']:.4f}"
            lines.append(
                f"| {r.name} | {m['epoch']} | {m['step']} | {m['train_loss']:.4f} | "
                f"{_pct(m['train_acc'])} | {val_loss} | {_pct(m.get('val_acc'))} |"
            )
    return "\n".join(lines)


def write_report(run_dirs: Sequence[Path], out_dir: Path, title: str | None = None) -> Path:
    runs = [load_run(p) for p in run_dirs]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_curves(runs, out_dir / "curves.png")
    title = title or ("Run " + runs[0].name if len(runs) == 1 else f"{len(runs)} runs compared")
    unfinished = [r.name for r in runs if not r.summary]
    note = f"\nUnfinished (no summary yet): {', '.join(unfinished)}.\n" if unfinished else ""
    text = (
        f"# {title}\n\n## Results\n\n{table(runs)}\n{note}\n## Curves\n\n"
        f"![loss, accuracy and learning rate per epoch](curves.png)\n\n"
        f"Solid lines: training split; dashed: validation split.\n\n"
        f"## Last epoch\n\n{_last_epochs(runs)}\n"
    )
    return atomic_write_text(out_dir / "report.md", text)
