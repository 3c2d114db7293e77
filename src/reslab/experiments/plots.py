"""Figures the experiments share: where they go, and a metric against steps for arms of several
seeds each (every seed drawn thin, the arm's mean drawn thick)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection, Mapping
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


Curve = tuple[list, list]  # (xs, ys) of one run


def _mean_of(curves: list[Curve]) -> Curve:
    """The mean over curves at each x all of them have (ignoring NaNs)."""
    maps = [dict(zip(xs, ys, strict=True)) for xs, ys in curves]
    xs = sorted(set.intersection(*(set(m) for m in maps))) if maps else []
    means = []
    for x in xs:
        values = [m[x] for m in maps if m[x] == m[x]]
        means.append(statistics.fmean(values) if values else float("nan"))
    return xs, means


def curves_figure(
    panels: Mapping[str, Mapping[str, list[Curve]]],
    path: Path,
    title: str,
    xlabel: str,
    ylabels: Mapping[str, str],
    log: Collection[str] = (),
) -> Path:
    """Side by side, one panel per title (panel -> arm -> one curve per run): each run a thin
    line, each arm's mean a thick one; `ylabels` gives each panel's y axis, `log` the panels
    drawn on a log scale."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), layout="constrained",
                             squeeze=False)  # fmt: skip
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (panel, arms) in zip(axes[0], panels.items(), strict=True):
        for i, (label, curves) in enumerate(arms.items()):
            for xs, ys in curves:
                ax.plot(xs, ys, color=colors[i % len(colors)], lw=0.8, alpha=0.35)
            xs, mean = _mean_of(curves)
            ax.plot(
                xs, mean, color=colors[i % len(colors)], lw=2, label=f"{label} (n={len(curves)})"
            )
        ax.set(title=panel, xlabel=xlabel, ylabel=ylabels.get(panel, ""))
        if panel in log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}; each run thin, each arm's mean thick")
    return save_figure(fig, path)


Band = tuple[list, list, list, list]  # (xs, low, middle, high) of one run


def bands_figure(panels: Mapping[str, list[Band]], path: Path, title: str, ylabel: str) -> Path:
    """One panel per title, each run's band (low to high, shaded) and its middle line, on a
    shared y axis: a distribution's percentiles over training."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), layout="constrained",
                             sharey=True, squeeze=False)  # fmt: skip
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (panel, bands) in zip(axes[0], panels.items(), strict=True):
        for i, (xs, low, middle, high) in enumerate(bands):
            ax.fill_between(xs, low, high, color=colors[i % len(colors)], alpha=0.15, lw=0)
            ax.plot(xs, middle, color=colors[i % len(colors)], lw=1)
        ax.set(title=f"{panel} ({len(bands)} runs)", xlabel=X_AXES["step"])
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title)
    return save_figure(fig, path)
