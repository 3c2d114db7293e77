"""Gradient flow: per-layer gradient norms and response stds, plain vs residual, BN vs none."""

from __future__ import annotations

import math
import statistics

import torch

from reslab.data import DeviceLoader, load_dataset
from reslab.experiments.analysis import (
    BETTER,
    Interval,
    Protocol,
    all_of,
    parts,
    sample_interval,
    welch_interval,
)
from reslab.experiments.plots import figures_dir
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.infer import load
from reslab.metrics import gradient_ratio, layer_statistics
from reslab.models import create_model
from reslab.report.curves import pyplot, save_figure
from reslab.report.experiment import Section

DEPTHS = (20, 56)
STEPS = 50  # "after some steps": short runs at a small lr every variant survives
VANISH = 0.1  # first-layer / last-layer gradient norm below this counts as vanishing
TENFOLD = 1.0  # a factor of 10, in log10 units: how far the plain net must be from the residual
# Initializations measured per network: one draw's ratio moves by up to 6x with the seed (plain56
# without BN: 0.05-0.31 over five), enough to flip a verdict; a t interval over their log ratios
# decides.
INIT_SEEDS = 5
AT_INIT = f"none: at initialization, {INIT_SEEDS} initializations (seeds 0-{INIT_SEEDS - 1}) each"
CHANGED = "2026-12-05, after the quick runs were seen"
INTERVALS = f"{CHANGED}: was the geometric mean against each threshold, with no interval"
EXPLODES = Protocol(
    metric="log10 of the first/last conv gradient-norm ratio at initialization, in two parts: "
    "plain with BN above 10 (a t interval over the initializations) and at least 10x the "
    "residual net's (a Welch interval of the difference of logs)",
    test=BETTER,
    margin=0.0,
    lrs=AT_INIT,
    seeds=INIT_SEEDS,
    changes=(INTERVALS,),
    paired=False,
)
VANISHES = Protocol(
    metric="log10 of the first/last conv gradient-norm ratio at initialization, in two parts: "
    "plain without BN below 0.1 (a t interval over the initializations) and at least 10x "
    "below the residual net's (a Welch interval of the difference of logs)",
    test=BETTER,
    margin=0.0,
    lrs=AT_INIT,
    seeds=INIT_SEEDS,
    changes=(INTERVALS,),
    paired=False,
)


def _configs():
    for kind in ("plain", "resnet"):
        for norm in ("batchnorm", "none"):
            for depth in DEPTHS:
                yield kind, norm, depth


def runs(budget: Budget) -> list[RunSpec]:
    return [
        RunSpec(
            f"{kind}{d}-{norm}",
            dict(
                model=f"{kind}{d}",
                norm=norm,
                lr=0.01,
                optimizer="sgd",
                momentum=0.9,
                max_steps=STEPS,
                epochs=budget.epochs,
            ),
            dict(kind=kind, norm=norm, depth=d),
        )
        for kind, norm, d in _configs()
    ]


def _probe_batch(results):
    data = load_dataset(results.runs[0].record.config["dataset"])
    loader = DeviceLoader(data.train, batch_size=128, mean=data.mean, std=data.std, train=False)
    return next(iter(loader))


def _stats(results, x, y) -> dict:
    """(kind, norm, depth) -> {"inits": rows of each of INIT_SEEDS initializations, "ratios":
    their first/last gradient-norm ratios, "trained": rows of each run after STEPS steps (None
    for a run that diverged)}."""
    stats = {}
    for r in results.runs:
        g = r.spec.group
        key = (g["kind"], g["norm"], g["depth"])
        if key not in stats:
            inits = []
            for seed in range(INIT_SEEDS):
                torch.manual_seed(seed)
                model = create_model(f"{g['kind']}{g['depth']}", norm=g["norm"])
                inits.append(layer_statistics(model, x, y))
            ratios = [gradient_ratio(rows) for rows in inits]
            stats[key] = {"inits": inits, "ratios": ratios, "trained": []}
        after = load(r.record.path).model if r.status == "done" else None
        stats[key]["trained"].append(layer_statistics(after, x, y) if after is not None else None)
    return stats


def _logs(stats, key) -> list[float]:
    return [_log10(r) for r in stats[key]["ratios"]]


def _ratio(stats, key) -> float:
    """The geometric mean of a network's ratios over its initializations."""
    logs = _logs(stats, key)
    return 10 ** statistics.fmean(logs) if logs else float("nan")


def _ratio_text(stats, key) -> str:
    ratios = stats[key]["ratios"]
    return f"{_ratio(stats, key):.3g} ({min(ratios):.3g}-{max(ratios):.3g})"


def _above(*checks: tuple[Interval, float]) -> str:
    """The verdict that each quantity lies above its threshold (log10 units): supported when
    every interval lies above its threshold, not supported when one lies below (on intervals
    held jointly, `parts`)."""
    shifted = [(EXPLODES, Interval(iv.estimate - t, iv.se, iv.df)) for iv, t in checks]
    return all_of(*parts(shifted))


def _decades(iv: Interval) -> str:
    return f"{iv.estimate:+.2f} (95% interval {iv.low:+.2f} to {iv.high:+.2f}, {iv.df:.3g} df)"


def _plot(stats, depth, key, when, out, ylabel):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (kind, norm, d), s in stats.items():
        runs = s["inits"] if when == "init" else s["trained"]
        runs = [[row[key] for row in rows] for rows in runs if rows is not None]
        if d != depth or not runs:
            continue
        values = list(zip(*runs, strict=True))
        mean = [10 ** statistics.fmean(math.log10(max(v, 1e-30)) for v in col) for col in values]
        layers = range(1, len(values) + 1)
        line = ax.plot(layers, mean, marker=".", label=f"{kind}{d} {norm} (n={len(runs)})")
        ax.fill_between(layers, [min(c) for c in values], [max(c) for c in values],
                        color=line[0].get_color(), alpha=0.2)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("layer (input -> output)")
    ax.set_ylabel(ylabel)
    what = f"{INIT_SEEDS} initializations" if when == "init" else f"the runs' seeds, {STEPS} steps"
    ax.set_title(f"depth {depth}: geometric mean and range over {what}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def _log10(ratio: float) -> float:
    """A gradient-norm ratio in log10 units; 0 (no gradient reaches the input) is -inf."""
    return -math.inf if ratio == 0 else math.log10(ratio)  # NaN stays NaN: not measured


def _explosion(stats, deep: int) -> Section:
    plain_key, residual_key = ("plain", "batchnorm", deep), ("resnet", "batchnorm", deep)
    plain = sample_interval(_logs(stats, plain_key))
    apart = welch_interval(_logs(stats, plain_key), _logs(stats, residual_key))
    explodes = _above((plain, math.log10(1 / VANISH)), (apart, TENFOLD))
    return Section(
        "With BN but without skips, gradients explode towards the input",
        "At initialization, batch normalization in a deep plain network makes the gradient grow "
        "geometrically towards the input (Yang et al. 2019, arXiv:1902.08129); skip connections "
        f"tame it. {EXPLODES.text()}",
        explodes,
        f"First/last conv gradient-norm ratio at initialization, depth {deep}, geometric mean "
        f"(range) over {INIT_SEEDS} initializations: plain with BN "
        f"{_ratio_text(stats, plain_key)}, residual with BN {_ratio_text(stats, residual_key)}. "
        f"In decades (log10): plain {_decades(plain)}, against 1 (10x); plain minus residual "
        f"{_decades(apart)}, against 1.",
    )


def _vanishing(stats, deep: int) -> tuple[str, str]:
    plain_key, residual_key = ("plain", "none", deep), ("resnet", "none", deep)
    plain = sample_interval(_logs(stats, plain_key))
    below = welch_interval(_logs(stats, residual_key), _logs(stats, plain_key))
    vanishes = _above((plain.flip(), -math.log10(VANISH)), (below, TENFOLD))
    return vanishes, (
        f"Ratio of the first conv's gradient norm to the last conv's, at initialization, "
        f"depth {deep}, geometric mean (range) over {INIT_SEEDS} initializations: plain "
        f"without BN {_ratio_text(stats, plain_key)}, residual without BN "
        f"{_ratio_text(stats, residual_key)}. In decades (log10): plain {_decades(plain)}, "
        f"against -1 (0.1); residual minus plain {_decades(below)}, against 1 (10x)."
    )


def _figures(stats, figures) -> tuple[list, list]:
    plots = [(d, "grad_norm", when, f"grad_norm_{d}_{when}.png", "weight-gradient norm")
             for d in DEPTHS for when in ("init", "trained")]  # fmt: skip
    plots += [(d, "response_std", "init", f"response_std_{d}.png",
               "std of the layer's response") for d in DEPTHS]  # fmt: skip
    paths = [_plot(stats, d, key, when, figures / name, label)
             for d, key, when, name, label in plots]  # fmt: skip
    captions = [
        f"{label} per layer, depth {d}, "
        + (f"at initialization ({INIT_SEEDS} initializations)" if when == "init"
           else f"after {STEPS} steps (every seed)")
        for d, _, when, _, label in plots
    ]  # fmt: skip
    return paths, captions


def analyze(results, out) -> list[Section]:
    x, y = _probe_batch(results)
    stats = _stats(results, x, y)
    rows = [
        [f"{kind}{depth}", norm, _ratio_text(stats, (kind, norm, depth)),
         ", ".join("diverged" if t is None else f"{gradient_ratio(t):.3g}" for t in s["trained"])]
        for (kind, norm, depth), s in stats.items()
    ]  # fmt: skip
    deep = max(DEPTHS)
    vanishes, evidence = _vanishing(stats, deep)
    figs, captions = _figures(stats, figures_dir(out))
    return [
        _explosion(stats, deep),
        Section(
            "Without skips and BN, gradients vanish towards the input",
            "In a deep plain network without normalization the gradient shrinks layer by layer "
            "towards the input; skip connections keep it flowing (He et al. 2015; 2016). "
            f"{VANISHES.text()}",
            vanishes,
            evidence,
            figures=figs,
            captions=captions,
            headers=[
                "network",
                "norm",
                f"first/last grad norm at init (geometric mean, range; {INIT_SEEDS} seeds)",
                f"after {STEPS} steps (each seed)",
            ],
            rows=rows,
        ),
    ]


EXPERIMENT = Experiment(
    "gradients",
    "Gradient flow through plain and residual networks",
    f"Per-layer weight-gradient norms and response stds on one batch of 128 training images, at "
    f"initialization and after {STEPS} SGD steps (lr 0.01), for plain and residual nets with "
    f"and without BN at depths {DEPTHS[0]} and {DEPTHS[1]}.",
    runs,
    analyze,
)
