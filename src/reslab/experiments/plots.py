"""Figures the experiments share: where they go, and validation accuracy against steps."""

from __future__ import annotations

from pathlib import Path

from reslab.report.curves import plot_metric


def figures_dir(out: Path) -> Path:
    folder = Path(out) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def val_acc_figure(runs, path: Path, title: str, labels: list[str] | None = None) -> Path:
    """Validation accuracy (%) of several runs (RunResults) against steps, overlaid."""
    return plot_metric(
        [r.record for r in runs],
        "val_acc",
        path,
        "validation accuracy (%)",
        transform=lambda a: 100 * a,
        x="step",
        labels=labels or [r.spec.name for r in runs],
        title=title,
    )
