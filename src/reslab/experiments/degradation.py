"""Plain vs residual at growing depth: the degradation problem (He et al. 2015, Fig. 6)."""

from __future__ import annotations

import math

from reslab.experiments.analysis import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    compare,
    fmt,
    judge,
    mean_std,
    progress,
    unless_untrained,
)
from reslab.experiments.plots import figures_dir
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.models.zoo import NARROW
from reslab.report.curves import plot_metric
from reslab.report.experiment import Section


def network(budget: Budget, kind: str, depth: int) -> str:
    """The network of a grid cell: the paper's width, or the narrow twin the budget asks for."""
    return f"{kind}{depth}{f'_w{NARROW[0]}' if budget.narrow else ''}"


def runs(budget: Budget) -> list[RunSpec]:
    return [
        RunSpec(
            network(budget, kind, d),
            dict(
                model=network(budget, kind, d),
                optimizer="sgd",
                lr=0.1,
                momentum=0.9,
                weight_decay=1e-4,
            ),
            dict(kind=kind, depth=d),
        )
        for kind in ("plain", "resnet")
        for d in budget.depths
    ]


def _train_error(results, kind, depth):
    """Training error over the last epoch (augmented batches, as in the paper's Fig. 6), and
    the number of images it was measured on."""
    values, n = [], 0
    for r in results.select(kind=kind, depth=depth):
        rows = [m for m in r.record.metrics if m.get("train_acc") is not None]
        values.append(1 - rows[-1]["train_acc"] if rows and r.status == "done" else None)
        if rows:
            n = round(rows[-1]["images_per_s"] * rows[-1]["epoch_time_s"])
    return mean_std(values), n


def _section(results, kind, deeper_is_worse, claim, title) -> Section:
    depths = results.budget.depths
    errs = [_train_error(results, kind, d) for d in depths]
    (shallow, n), (deep, _) = errs[0], errs[-1]
    seeds = len(results.select(kind=kind, depth=depths[0]))
    # Deeper worse: the deep net's error exceeds the shallow one's; deeper better: the reverse.
    pair = (deep, shallow) if deeper_is_worse else (shallow, deep)
    verdict, gap, noise = compare(*pair, n, seeds, floor=0.005)
    # The paper's Fig. 6 is about trained networks: early on, deeper nets are just slower to start.
    compared = results.select(kind=kind, depth=depths[0]) + results.select(
        kind=kind, depth=depths[-1]
    )
    verdict, why = judge(verdict, *pair, n, seeds, compared, floor=0.005)
    name = {d: network(results.budget, kind, d) for d in depths}
    listing = ", ".join(f"{name[d]} {fmt(*e)}" for d, (e, _) in zip(depths, errs, strict=True))
    narrow = (
        f" The networks are the narrow twins ({'/'.join(map(str, NARROW))} channels, half the "
        "paper's width) at the paper's depths: the depth question at a CPU's cost."
        if results.budget.narrow
        else ""
    )
    return Section(
        title,
        claim,
        verdict,
        f"Final-epoch training error: {listing}. {name[depths[-1]]} vs {name[depths[0]]}: "
        f"{100 * abs(gap):.1f} points {'higher' if (gap > 0) == deeper_is_worse else 'lower'} "
        f"against a noise level of {100 * noise:.1f} (spread over seeds, 95% sampling noise of "
        f"{n} training images, 0.5 point).{narrow}{why}",
        headers=["depth", "training error", "final val acc"],
        rows=[
            [
                str(d),
                fmt(*e),
                fmt(
                    *mean_std(
                        (r.record.metrics[-1].get("val_acc") if r.record.metrics else None)
                        for r in results.select(kind=kind, depth=d)
                    )
                ),
            ]
            for d, (e, _) in zip(depths, errs, strict=True)
        ],
    )


def _removed(results) -> Section:
    """The skip connections' part: the plain nets degrade with depth and the ResNets of the same
    depths do not. Each family's degradation is its deep net's training error minus its shallow
    net's, with the noise of that gap; the claim needs a plain degradation beyond its noise, a
    residual one within its noise, and the two apart by more than their combined noise."""
    depths = results.budget.depths
    shallow, deep = depths[0], depths[-1]
    seeds = len(results.select(kind="plain", depth=shallow))
    gaps = {}
    for kind in ("plain", "resnet"):
        (low, n), (high, _) = (
            _train_error(results, kind, shallow),
            _train_error(results, kind, deep),
        )
        _, gap, noise = compare(high, low, n, seeds, floor=0.005)
        gaps[kind] = gap, noise
    (plain, plain_noise), (res, res_noise) = gaps["plain"], gaps["resnet"]
    apart = math.hypot(plain_noise, res_noise)
    if any(math.isnan(g) for g in (plain, res)):
        decided = INCONCLUSIVE
    elif plain > plain_noise and res > res_noise:
        decided = NOT_SUPPORTED  # the ResNets degrade too
    elif plain > plain_noise and res <= res_noise and plain - res > apart:
        decided = SUPPORTED
    else:
        decided = INCONCLUSIVE  # no degradation to remove at this budget, or too close to call
    compared = [r for kind in ("plain", "resnet") for d in (shallow, deep)
                for r in results.select(kind=kind, depth=d)]  # fmt: skip
    decided, why = unless_untrained(decided, (progress(r.record, r.spec.name) for r in compared))
    names = {k: (network(results.budget, k, shallow), network(results.budget, k, deep))
             for k in ("plain", "resnet")}  # fmt: skip
    return Section(
        "Skip connections remove the degradation",
        "At the depth where the plain network trains worse than its shallow twin, the ResNet of "
        "the same depth does not: the degradation is an optimization problem that residual "
        "learning solves (He et al. 2015, Fig. 6, left against middle).",
        decided,
        f"Training error of the deep net minus the shallow one: plain "
        f"({names['plain'][1]} - {names['plain'][0]}) {100 * plain:+.1f} points against a noise "
        f"of {100 * plain_noise:.1f}; residual ({names['resnet'][1]} - {names['resnet'][0]}) "
        f"{100 * res:+.1f} against {100 * res_noise:.1f}; the two differ by "
        f"{100 * (plain - res):.1f} points against a combined noise of {100 * apart:.1f}.{why}",
    )


def analyze(results, out) -> list[Section]:
    figures = figures_dir(out)
    plain = _section(
        results,
        "plain",
        True,
        "Deeper plain networks have higher training error: depth alone makes "
        "optimization harder (He et al. 2015, Fig. 6 left).",
        "Deeper plain nets train worse",
    )
    res = _section(
        results,
        "resnet",
        False,
        "Deeper residual networks have lower training error (He et al. 2015, Fig. 6 middle).",
        "Deeper residual nets train better",
    )
    for section, kind in ((plain, "plain"), (res, "resnet")):
        rs = [
            r
            for d in results.budget.depths
            for r in results.select(kind=kind, depth=d)
            if r.seed == 0
        ]
        section.figures.append(
            plot_metric(
                [r.record for r in rs],
                "train_acc",
                figures / f"train_error_{kind}.png",
                "training error (%)",
                x="step",
                transform=lambda a: 100 * (1 - a),
                labels=[r.spec.name for r in rs],
                title=f"{kind} networks: training error",
            )
        )
    return [plain, res, _removed(results)]


EXPERIMENT = Experiment(
    "degradation",
    "Degradation: plain vs residual networks at growing depth",
    "CIFAR plain nets and ResNets of the same depths (option A shortcuts), SGD 0.1, momentum "
    "0.9, weight decay 1e-4.",
    runs,
    analyze,
)
