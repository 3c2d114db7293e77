"""Gradient flow: per-layer gradient norms and response stds, plain vs residual, BN vs none."""

from __future__ import annotations

import math
import statistics

import torch

from reslab.data import DeviceLoader, load_dataset
from reslab.experiments.analysis import all_of, verdict
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
# without BN: 0.05-0.31 over five), enough to flip a verdict; their geometric mean decides.
INIT_SEEDS = 5


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
    """(kind, norm, depth) -> {"init": rows of the first initialization, "ratios": the
    first/last gradient-norm ratio of each of INIT_SEEDS initializations, "trained": rows or
    None}."""
    stats = {}
    for r in results.runs:
        if r.seed != 0:
            continue
        g = r.spec.group
        inits = []
        for seed in range(INIT_SEEDS):
            torch.manual_seed(seed)
            model = create_model(f"{g['kind']}{g['depth']}", norm=g["norm"])
            inits.append(layer_statistics(model, x, y))
        after = load(r.record.path).model if r.status == "done" else None
        stats[(g["kind"], g["norm"], g["depth"])] = {
            "init": inits[0],
            "ratios": [gradient_ratio(rows) for rows in inits],
            "trained": layer_statistics(after, x, y) if after is not None else None,
        }
    return stats


def _ratio(stats, key) -> float:
    """The geometric mean of a network's ratios over its initializations."""
    logs = [_log10(r) for r in stats[key]["ratios"]]
    return 10 ** statistics.fmean(logs) if logs else float("nan")


def _ratio_text(stats, key) -> str:
    ratios = stats[key]["ratios"]
    return f"{_ratio(stats, key):.3g} ({min(ratios):.3g}-{max(ratios):.3g})"


def _plot(stats, depth, key, when, out, ylabel):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (kind, norm, d), s in stats.items():
        if d == depth and s[when] is not None:
            ax.plot(
                [row["layer"] for row in s[when]],
                [row[key] for row in s[when]],
                label=f"{kind}{d} {norm}",
                marker=".",
            )
    ax.set_yscale("log")
    ax.set_xlabel("layer (input -> output)")
    ax.set_ylabel(ylabel)
    ax.set_title(
        f"depth {depth}, {'at initialization' if when == 'init' else f'after {STEPS} steps'}"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def _log10(ratio: float) -> float:
    """A gradient-norm ratio in log10 units; 0 (no gradient reaches the input) is -inf."""
    return -math.inf if ratio == 0 else math.log10(ratio)  # NaN stays NaN: not measured


def _explosion(stats, deep: int) -> Section:
    plain_key, residual_key = ("plain", "batchnorm", deep), ("resnet", "batchnorm", deep)
    plain, residual = _ratio(stats, plain_key), _ratio(stats, residual_key)
    # Explodes: above 1 / VANISH (a plain ratio below it leaves the claim open, never refutes
    # it) and 10x the residual net's; refuted when the plain ratio is below the residual one.
    explodes = all_of(
        verdict(_log10(plain), _log10(1 / VANISH), refute_margin=math.inf),
        verdict(_log10(plain), _log10(residual), margin=TENFOLD, refute_margin=0.0),
    )
    return Section(
        "With BN but without skips, gradients explode towards the input",
        "At initialization, batch normalization in a deep plain network makes the gradient grow "
        "geometrically towards the input (Yang et al. 2019, arXiv:1902.08129); skip connections "
        "tame it.",
        explodes,
        f"First/last conv gradient-norm ratio at initialization, depth {deep}, geometric mean "
        f"(range) over {INIT_SEEDS} initializations: plain with BN "
        f"{_ratio_text(stats, plain_key)}, residual with BN {_ratio_text(stats, residual_key)} "
        f"('explode' means above {1 / VANISH:g} and at least 10x the residual net's).",
    )


def analyze(results, out) -> list[Section]:
    figures = figures_dir(out)
    x, y = _probe_batch(results)
    stats = _stats(results, x, y)
    rows = []
    for (kind, norm, depth), s in stats.items():
        after = s["trained"]
        rows.append(
            [
                f"{kind}{depth}",
                norm,
                _ratio_text(stats, (kind, norm, depth)),
                "diverged" if after is None else f"{gradient_ratio(after):.3g}",
            ]
        )
    deep = max(DEPTHS)
    plain_key, residual_key = ("plain", "none", deep), ("resnet", "none", deep)
    plain, residual = _ratio(stats, plain_key), _ratio(stats, residual_key)
    # Vanishes: below VANISH (a ratio above it refutes the claim) and 10x below the residual
    # net's; refuted when the plain ratio is above the residual one.
    vanishes = all_of(
        verdict(_log10(plain), _log10(VANISH), lower_is_better=True),
        verdict(
            _log10(plain), _log10(residual), lower_is_better=True, margin=TENFOLD, refute_margin=0.0
        ),
    )
    figs = [
        _plot(
            stats,
            d,
            "grad_norm",
            when,
            figures / f"grad_norm_{d}_{when}.png",
            "weight-gradient norm",
        )
        for d in DEPTHS
        for when in ("init", "trained")
    ]
    figs += [
        _plot(
            stats,
            d,
            "response_std",
            "init",
            figures / f"response_std_{d}.png",
            "std of the layer's response",
        )
        for d in DEPTHS
    ]
    return [
        _explosion(stats, deep),
        Section(
            "Without skips and BN, gradients vanish towards the input",
            "In a deep plain network without normalization the gradient shrinks layer by layer "
            "towards the input; skip connections keep it flowing (He et al. 2015; 2016).",
            vanishes,
            f"Ratio of the first conv's gradient norm to the last conv's, at initialization, "
            f"depth {deep}, geometric mean (range) over {INIT_SEEDS} initializations: plain "
            f"without BN {_ratio_text(stats, plain_key)}, residual without BN "
            f"{_ratio_text(stats, residual_key)} ('vanishing' means below {VANISH} and at least "
            "10x below the residual net's).",
            figures=figs,
            headers=[
                "network",
                "norm",
                f"first/last grad norm at init (geometric mean, range; {INIT_SEEDS} seeds)",
                f"after {STEPS} steps",
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
