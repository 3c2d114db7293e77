"""Figures the experiments share: where they go, and a metric against steps for arms of several
seeds each (every seed drawn thin, the arm's mean drawn thick)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

from reslab.report.curves import X_AXES, pyplot, save_figure, series


def figures_dir(out: Path) -> Path:
    folder = Path(out) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _mean_curve(runs, key: str, transform: Callable) -> tuple[list, list]:
    """The mean over runs at each step all of them reached."""
    curves = [dict(zip(*series(r.record, key, "step"), strict=True)) for r in runs]
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    return steps, [statistics.fmean(transform(c[s]) for c in curves) for s in steps]


def arms_figure(
    arms: Mapping[str, list],
    key: str,
    path: Path,
    title: str,
    ylabel: str,
    transform: Callable[[float], float] = lambda a: 100 * a,
) -> Path:
    """`key` against steps for each arm (label -> RunResults): each seed a thin line, the arm's
    mean a thick one; the title says how many seeds each arm has."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, runs) in enumerate(arms.items()):
        color = colors[i % len(colors)]
        for r in runs:
            xs, ys = series(r.record, key, "step")
            ax.plot(xs, [transform(y) for y in ys], color=color, lw=0.8, alpha=0.35)
        steps, mean = _mean_curve(runs, key, transform)
        ax.plot(steps, mean, color=color, lw=2, label=f"{label} (n={len(runs)})")
    seeds = sorted({len(runs) for runs in arms.values()})
    n = "/".join(map(str, seeds))
    ax.set(title=f"{title}; mean of {n} seed(s), each seed thin", xlabel=X_AXES["step"])
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def val_acc_figure(arms: Mapping[str, list], path: Path, title: str) -> Path:
    """Validation accuracy (%) of each arm (label -> RunResults) against steps."""
    return arms_figure(arms, "val_acc", path, title, "validation accuracy (%)")
