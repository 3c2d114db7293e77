"""Training curves as PNG: loss, accuracy and learning rate, several runs overlaid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reslab.io import atomic_write
from reslab.report.runs import RunRecord


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_png: Path) -> Path:
    out_png = Path(out_png)
    atomic_write(out_png, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    _pyplot().close(fig)
    return out_png


def _series(run: RunRecord, x: str, key: str) -> tuple[list, list]:
    pairs = [(row[x], row[key]) for row in run.metrics if row.get(key) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_curves(
    runs: Sequence[RunRecord],
    out_png: str | Path,
    x: str = "epoch",
    labels: Sequence[str] | None = None,
) -> Path:
    """Loss (train solid, val dashed), accuracy and lr against `x` ("epoch" or "step")."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    labels = labels or [r.name for r in runs]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        c = colors[i % len(colors)]
        for ax, key in ((axes[0], "loss"), (axes[1], "acc")):
            scale = 100 if key == "acc" else 1
            xs, ys = _series(run, x, f"train_{key}")
            ax.plot(xs, [y * scale for y in ys], color=c, label=f"{label} train")
            xs, ys = _series(run, x, f"val_{key}")
            if ys:
                ax.plot(xs, [y * scale for y in ys], color=c, ls="--", label=f"{label} val")
        axes[2].plot(*_series(run, x, "lr"), color=c, label=label)
    titles = ("loss (cross-entropy)", "accuracy (%)", "learning rate (end of epoch)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    return _save(fig, out_png)


def plot_metric(
    runs: Sequence[RunRecord],
    key: str,
    out_png: str | Path,
    ylabel: str,
    x: str = "epoch",
    logy: bool = False,
    transform=None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """One metric of several runs overlaid, e.g. training error = 1 - train_acc."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run, label in zip(runs, labels or [r.name for r in runs], strict=True):
        xs, ys = _series(run, x, key)
        ax.plot(xs, [transform(y) for y in ys] if transform else ys, label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_png)
