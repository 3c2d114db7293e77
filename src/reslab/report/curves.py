"""Training curves as PNG: loss, accuracy and learning rate, several runs overlaid."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from reslab.errors import UserError
from reslab.io import atomic_write
from reslab.report.runs import RunRecord

X_AXES = {"epoch": "epoch", "step": "optimizer step"}


def pyplot():
    """matplotlib.pyplot on the Agg backend: files only, never a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_png: str | Path) -> Path:
    """Write `fig` as PNG atomically and free it."""
    out_png = Path(out_png)
    try:
        atomic_write(out_png, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    finally:
        pyplot().close(fig)
    return out_png


def series(run: RunRecord, key: str, x: str = "epoch") -> tuple[list, list]:
    """(x, y) of the rows that have both; null values (e.g. no validation split) drop out."""
    pairs = [(r.get(x), r.get(key)) for r in run.metrics]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _line(ax, xs: list, ys: list, **style) -> None:
    """One series; a series of one point gets a marker, which a line of one point lacks."""
    ax.plot(xs, ys, marker="o" if len(xs) == 1 else None, **style)


def _check(runs: Sequence[RunRecord], x: str, labels: Sequence[str] | None) -> list[str]:
    if not runs:
        raise UserError("no runs to plot; pass at least one run directory")
    if x not in X_AXES:
        raise UserError(f"x must be one of {', '.join(X_AXES)}, not {x!r}")
    if labels is not None and len(labels) != len(runs):
        raise UserError(f"got {len(labels)} labels for {len(runs)} runs; give one per run")
    return list(labels) if labels is not None else [r.name for r in runs]


def _axes(ax, x: str, ylabel: str, title: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set(title=title, xlabel=X_AXES[x], ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 2.5"
    ax.grid(alpha=0.3)


def _log_y(ax) -> None:
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        """Labels the ticks matplotlib would label, as "0.6" or "40" rather than 6x10^-1."""

        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(Plain())
    ax.yaxis.set_minor_formatter(Plain(labelOnlyBase=False))
    ax.grid(alpha=0.15, which="minor")


def _style_key(ax) -> None:
    """A legend for line styles only; colours (runs) are keyed in the lr panel."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.3"), Line2D([], [], color="0.3", ls="--")]
    ax.legend(handles, ["train", "validation"], fontsize=8, loc="best")


def plot_curves(
    runs: Sequence[RunRecord],
    out_png: str | Path,
    x: str = "epoch",
    labels: Sequence[str] | None = None,
) -> Path:
    """Loss (train solid, validation dashed), accuracy and learning rate against `x`."""
    labels = _check(runs, x, labels)
    plt = pyplot()
    fig, (loss_ax, acc_ax, lr_ax) = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        c = colors[i % len(colors)]
        for ax, key, scale in ((loss_ax, "loss", 1), (acc_ax, "acc", 100)):
            for split, ls in (("train", "-"), ("val", "--")):
                xs, ys = series(run, f"{split}_{key}", x)
                _line(ax, xs, [y * scale for y in ys], color=c, ls=ls)
        _line(lr_ax, *series(run, "lr", x), color=c, label=label)
    panels = (
        (loss_ax, "loss", "cross-entropy loss"),
        (acc_ax, "top-1 accuracy", "accuracy (%)"),
        (lr_ax, "learning rate (end of epoch)", "learning rate"),
    )
    for ax, title, ylabel in panels:
        _axes(ax, x, ylabel, title)
    _style_key(loss_ax)
    # Outside the panel so that many runs never hide a curve; bbox_inches="tight" keeps it.
    lr_ax.legend(title="run", fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("Training curves" if len(runs) > 1 else f"Training curves: {labels[0]}")
    return save_figure(fig, out_png)


def plot_metric(
    runs: Sequence[RunRecord],
    key: str,
    out_png: str | Path,
    ylabel: str,
    logy: bool = False,
    *,
    x: str = "epoch",
    transform: Callable[[float], float] | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """One metric of several runs overlaid, e.g. training error with
    `key="train_acc", transform=lambda a: 100 * (1 - a), ylabel="training error (%)"`."""
    labels = _check(runs, x, labels)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for run, label in zip(runs, labels, strict=True):
        xs, ys = series(run, key, x)
        _line(ax, xs, [transform(y) for y in ys] if transform else ys, label=label)
    _axes(ax, x, ylabel, title or f"{ylabel} per {X_AXES[x]}")
    if logy:
        _log_y(ax)
    ax.legend(title="run", fontsize=8)
    return save_figure(fig, out_png)
