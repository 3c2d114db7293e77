"""BN vs no BN: convergence speed, learning-rate tolerance, BN before or after the ReLU, and the
from-scratch BN. Any network with a norm may be tested (`--model`); the placement claim needs
the network's twin with each norm after its ReLU (`PLACEMENT_TWINS`)."""

from __future__ import annotations

import math

from reslab.experiments.analysis import (
    compare,
    final,
    fmt,
    mean_std,
    steps_to_target,
    trained,
    val_size,
    verdict,
)
from reslab.experiments.figures import figures_dir, val_acc_figure
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.report.experiment import Section

NORMS = ("batchnorm", "batchnorm-scratch", "none")
LRS = (0.01, 0.1, 0.5, 1.0)
MATCH_TOLERANCE = 0.03  # final accuracy gap (absolute) under which two BNs count as matching
# network -> the same network with each norm after its ReLU instead of before it
PLACEMENT_TWINS = {"resnet20": "resnet20_relu_bn", "small_cnn": "small_cnn_relu_bn"}
AFTER_RELU = "batchnorm-after-relu"  # the twin's group label


def _spec(name: str, model: str, norm: str, lr: float, group: str) -> RunSpec:
    common = dict(optimizer="sgd", momentum=0.9, weight_decay=5e-4)
    return RunSpec(name, dict(model=model, norm=norm, lr=lr, **common), dict(norm=group, lr=lr))


def runs(budget: Budget, model: str) -> list[RunSpec]:
    specs = [_spec(f"{norm}-lr{lr:g}", model, norm, lr, norm) for norm in NORMS for lr in LRS]
    twin = PLACEMENT_TWINS.get(model)
    if twin:
        specs += [_spec(f"{AFTER_RELU}-lr{lr:g}", twin, "batchnorm", lr, AFTER_RELU) for lr in LRS]
    return specs


def _steps(results, norm, target) -> float | None:
    """Fewest steps to target over the learning rates (mean over seeds; all must reach it)."""
    best = None
    for lr in LRS:
        steps = [steps_to_target(r.record, target) for r in results.select(norm=norm, lr=lr)]
        if steps and all(v is not None for v in steps):
            mean = sum(steps) / len(steps)
            best = mean if best is None else min(best, mean)
    return best


def _num(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:g}"


def _largest_lr(results, norm, chance):
    ok = [lr for lr in LRS if all(trained(r, chance) for r in results.select(norm=norm, lr=lr))]
    return max(ok) if ok else None


def _convergence(results, target) -> Section:
    bn, none = _steps(results, "batchnorm", target), _steps(results, "none", target)
    never = math.inf  # a target never reached: the most steps there are
    faster = verdict(
        never if bn is None else bn, never if none is None else none, lower_is_better=True
    )
    rows = []
    for norm in NORMS:
        for lr in LRS:
            rs = results.select(norm=norm, lr=lr)
            s = [steps_to_target(r.record, target) for r in rs]
            rows.append(
                [
                    norm,
                    f"{lr:g}",
                    ", ".join("-" if v is None else str(v) for v in s),
                    fmt(*mean_std(final(r.record, "val_acc") for r in rs)),
                    ", ".join(r.status for r in rs),
                ]
            )
    return Section(
        "BN converges in fewer steps",
        "With batch normalization the network reaches a given accuracy in fewer steps "
        "(Ioffe & Szegedy 2015, Fig. 2).",
        faster,
        f"Fewest steps to {100 * target:.0f}% validation accuracy over the learning rates: "
        f"with BN {_num(bn, 'never')}, without {_num(none, 'never')}.",
        headers=["norm", "lr", f"steps to {100 * target:.0f}% val", "final val acc", "status"],
        rows=rows,
    )


def _tolerance(results, chance) -> Section:
    bn, none = _largest_lr(results, "batchnorm", chance), _largest_lr(results, "none", chance)
    tolerates = verdict(0.0 if bn is None else bn, 0.0 if none is None else none)  # 0: none trains
    return Section(
        "BN tolerates higher learning rates",
        "Batch-normalized networks still train at learning rates where the same network without "
        "normalization diverges or stalls (Ioffe & Szegedy 2015, Sec. 3.3).",
        tolerates,
        f"Largest learning rate that still trains (no divergence, final validation accuracy "
        f"above 1.5x chance): with BN {_num(bn, 'none')}, without {_num(none, 'none')}. "
        f"Tried: {', '.join(f'{lr:g}' for lr in LRS)}.",
    )


def _scratch(results) -> Section:
    gaps, rows = [], []
    for lr in LRS:
        a = mean_std(final(r.record, "val_acc") for r in results.select(norm="batchnorm", lr=lr))
        b = mean_std(
            final(r.record, "val_acc") for r in results.select(norm="batchnorm-scratch", lr=lr)
        )
        gap = abs(a[0] - b[0]) if a[0] == a[0] and b[0] == b[0] else None
        if gap is not None:
            gaps.append(gap)
        rows.append([f"{lr:g}", fmt(*a), fmt(*b), "-" if gap is None else f"{100 * gap:.1f}"])
    worst = max(gaps) if gaps else None
    return Section(
        "The from-scratch BN matches torch's BN",
        "reslab.nn.BatchNorm2d (analytic backward) trains like torch.nn.BatchNorm2d.",
        verdict(worst, MATCH_TOLERANCE, lower_is_better=True),
        f"Largest gap in final validation accuracy over the learning rates: "
        f"{'-' if worst is None else f'{100 * worst:.1f} points'} (tolerance "
        f"{100 * MATCH_TOLERANCE:.0f}). Both use the same seed; they differ only in floating-point "
        "rounding, which compounds over training.",
        headers=["lr", "torch BN val acc", "scratch BN val acc", "gap (points)"],
        rows=rows,
    )


def _best(results, norm) -> tuple[tuple[float, float], float | None]:
    """(mean, std) of final validation accuracy at the norm's best learning rate, and that lr."""
    scored = [(mean_std(final(r.record, "val_acc") for r in results.select(norm=norm, lr=lr)), lr)
              for lr in LRS if results.select(norm=norm, lr=lr)]  # fmt: skip
    scored = [(ms, lr) for ms, lr in scored if ms[0] == ms[0]]  # NaN: no run finished
    return max(scored, default=((float("nan"), float("nan")), None), key=lambda s: s[0][0])


def _placement(results) -> Section:
    before, lr_b = _best(results, "batchnorm")
    after, lr_a = _best(results, AFTER_RELU)
    seeds = max(1, len(results.select(norm="batchnorm", lr=LRS[0])))
    decided, gap, noise = compare(before, after, val_size(results), seeds)
    rows = [
        [f"{lr:g}"] + [fmt(*mean_std(final(r.record, "val_acc") for r in results.select(
            norm=norm, lr=lr))) for norm in ("batchnorm", AFTER_RELU)]
        for lr in LRS
    ]  # fmt: skip
    return Section(
        "BN before the ReLU trains better than after it",
        "The BN paper normalizes a layer's output right before the nonlinearity (Ioffe & Szegedy "
        "2015, Sec. 3.2); the common Keras form puts it after the ReLU.",
        decided,
        f"Final validation accuracy at each placement's best learning rate: before the ReLU "
        f"{fmt(*before)} (lr {lr_b}), after it {fmt(*after)} (lr {lr_a}): a gap of "
        f"{100 * gap:.1f} points against a noise level of {100 * noise:.1f}.",
        headers=["lr", "BN before ReLU", "BN after ReLU"],
        rows=rows,
    )


def analyze(results, out) -> list[Section]:
    target, chance = results.budget.target_acc, 0.1
    figures = figures_dir(out)
    conv = _convergence(results, target)
    for lr in LRS:
        rs = [r for norm in NORMS for r in results.select(norm=norm, lr=lr) if r.seed == 0]
        conv.figures.append(
            val_acc_figure(
                rs,
                figures / f"val_acc_lr{lr:g}.png",
                f"lr = {lr:g}",
                labels=[r.spec.group["norm"] for r in rs],
            )
        )
    sections = [conv, _tolerance(results, chance)]
    if results.select(norm=AFTER_RELU):
        sections.append(_placement(results))
    return [*sections, _scratch(results)]


EXPERIMENT = Experiment(
    "batchnorm",
    "BatchNorm: convergence, learning-rate tolerance, from-scratch check",
    "{model} with torch's BN, reslab's from-scratch BN and no normalization (and, where it has "
    "one, its twin with BN after each ReLU), each at four learning rates (SGD, momentum 0.9).",
    runs,
    analyze,
    model="resnet20",
)
