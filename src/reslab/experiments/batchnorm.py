"""BN vs no BN: convergence speed, learning-rate tolerance, BN before or after the ReLU, and the
from-scratch BN. Any network with a norm may be tested (`--model`); the placement claim needs
the network's twin with each norm after its ReLU (`PLACEMENT_TWINS`)."""

from __future__ import annotations

import math

from reslab.experiments.analysis import (
    BETTER,
    CHANCE,
    INCONCLUSIVE,
    LARGER,
    MATCHES,
    UNTRAINED,
    Fit,
    Protocol,
    accuracy_on_test,
    all_of,
    area,
    cells,
    fewest_seeds,
    final,
    fmt,
    hours,
    mean_std,
    parts,
    progress,
    run_names,
    seeds_to_decide,
    settle,
    steps_to_target,
    trained,
    verdict,
    why_open,
)
from reslab.experiments.plots import figures_dir, val_acc_figure
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.report.experiment import Section

NORMS = ("batchnorm", "batchnorm-scratch", "none")
LRS = (0.01, 0.1, 0.5, 1.0)
# network -> the same network with each norm after its ReLU instead of before it
PLACEMENT_TWINS = {"resnet20": "resnet20_relu_bn", "small_cnn": "small_cnn_relu_bn"}
AFTER_RELU = "batchnorm-after-relu"  # the twin's group label
CHANGED = "2026-12-05, after the hour and quick runs were seen"

CONVERGES = Protocol(
    metric="the area under the validation-accuracy curve (its mean over the evaluations at "
    "each epoch's end; epochs after a divergence count at chance)",
    test=BETTER,
    margin=0.01,
    lrs="no choice: BN against no norm at every rate of the grid where either trains, the "
    "claim holding at each (an intersection-union test, no widening)",
    changes=(
        f"{CHANGED}: was the steps to the budget's target (checked once an epoch) of each arm's "
        "best rate of four, margin 0, which under an annealed schedule follows the final "
        "accuracy",
    ),
)
TOLERATES = Protocol(
    metric="the largest rate of the grid at which every seed trains (no divergence, final "
    "validation accuracy above 1.5x chance)",
    test=LARGER,
    margin=0.0,
    lrs="the grid's four rates, the same for both arms",
    paired=False,
)
PLACED = Protocol(
    metric="final test accuracy (the test split, read once per run)",
    test=BETTER,
    margin=0.01,
    lrs="each placement at its rate of the grid with the highest mean final validation "
    "accuracy: chosen on validation, judged on test",
    changes=(f"{CHANGED}: was final validation accuracy, the set the rate was chosen on",),
)
MATCH = Protocol(
    metric="final validation accuracy",
    test=MATCHES,
    margin=0.01,
    lrs="no choice: every rate of the grid where torch's BN trains, the claim holding at each "
    "(an intersection-union test, no widening)",
    changes=(
        f"{CHANGED}: was a gap within z = 2.50 (Bonferroni over the rates) times the larger of "
        "the seed spread and the split's sampling noise, which more noise made easier to meet",
    ),
)


def _spec(name: str, model: str, norm: str, lr: float, group: str) -> RunSpec:
    common = dict(optimizer="sgd", momentum=0.9, weight_decay=5e-4)
    return RunSpec(name, dict(model=model, norm=norm, lr=lr, **common), dict(norm=group, lr=lr))


def runs(budget: Budget, model: str) -> list[RunSpec]:
    specs = [_spec(f"{norm}-lr{lr:g}", model, norm, lr, norm) for norm in NORMS for lr in LRS]
    twin = PLACEMENT_TWINS.get(model)
    if twin:
        specs += [_spec(f"{AFTER_RELU}-lr{lr:g}", twin, "batchnorm", lr, AFTER_RELU) for lr in LRS]
    return specs


def _arms(results) -> dict[tuple, list]:
    """(norm, lr) -> its runs, for every cell of the grid that has runs."""
    norms = (*NORMS, AFTER_RELU)
    arms = {(n, lr): results.select(norm=n, lr=lr) for n in norms for lr in LRS}
    return {k: v for k, v in arms.items() if v}


def _fit(results, metric) -> Fit:
    """`metric` over every cell, its spread pooled over the cells where every seed trains."""
    arms = _arms(results)
    working = {k: v for k, v in arms.items() if all(trained(r, CHANCE) for r in v)}
    return Fit(cells(arms, metric), noise=Fit(cells(working, metric)))


def _num(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:g}"


def _rate_trains(results, norm, lr) -> bool | None:
    """Whether the runs at this rate train: True, False (diverged, or near chance with the loss
    no longer falling), or None while any is near chance but still learning."""
    verdicts = set()
    for r in results.shared(norm=norm, lr=lr):  # a choice: on the seeds every run has
        if trained(r, CHANCE):
            verdicts.add(True)
        elif r.status == "diverged" or not progress(r.record).learning:
            verdicts.add(False)
        else:
            verdicts.add(None)
    if not verdicts:
        return None
    return False if False in verdicts else (None if None in verdicts else True)


def _largest_lr(results, norm, undecided_trains: bool = False):
    """The largest rate that trains; rates not yet decided count as `undecided_trains`."""
    ok = []
    for lr in LRS:
        trains = _rate_trains(results, norm, lr)
        if trains or (trains is None and undecided_trains):
            ok.append(lr)
    return max(ok) if ok else None


def _judge(protocol, gaps: list[tuple]) -> list[tuple]:
    """(lr, interval) of each rate a claim needs -> (lr, interval, verdict)."""
    verdicts = parts([(protocol, iv) for _, iv in gaps])
    return [(lr, iv, v) for (lr, iv), v in zip(gaps, verdicts, strict=True)]


def _open_runs(judged: list[tuple], results, norms: tuple[str, str]) -> list[str]:
    """The runs of the rates left open between two norms: where more seeds may decide them."""
    return run_names(*(results.select(norm=n, lr=lr) for lr, _, decided in judged
                       if decided == INCONCLUSIVE for n in norms))  # fmt: skip


def _open(protocol, judged: list[tuple], results, norms: tuple[str, str]) -> str:
    """What would decide the rates left open between two norms. The claim holds at every rate,
    so all of them must be decided: the seeds are those of the rate that needs the most, the
    cost that of adding them at every open rate (as --more-seeds does)."""
    left = [(lr, iv) for lr, iv, decided in judged if decided == INCONCLUSIVE]
    if not left:
        return ""
    arms = [results.select(norm=n, lr=lr) for lr, _ in left for n in norms]
    seeds = fewest_seeds(*arms)

    def need(item: tuple) -> float:
        n = seeds_to_decide(protocol, item[1], seeds)
        return math.inf if n is None else n

    worst = max(left, key=need)[1]
    spent = hours(r for runs in arms for r in runs)
    rates = ", ".join(f"{lr:g}" for lr, _ in left)
    return f" Rates left open: {rates}.{why_open(protocol, worst, seeds, spent)}"


def _convergence(results, target) -> Section:
    fit = _fit(results, lambda r: area(r, "val_acc", CHANCE))
    judged = []
    for lr in LRS:
        bn, none = results.select(norm="batchnorm", lr=lr), results.select(norm="none", lr=lr)
        if bn and none and any(trained(r, CHANCE) for r in bn + none):
            judged.append((lr, fit.gap(("batchnorm", lr), ("none", lr))))
    judged = _judge(CONVERGES, judged)
    decided = all_of(*(d for *_, d in judged)) if judged else INCONCLUSIVE
    gaps = "; ".join(f"lr {lr:g}: {iv.text()}, {d}" for lr, iv, d in judged) or "no rate"
    opened = _open(CONVERGES, judged, results, ("batchnorm", "none"))
    rows = [
        [
            norm,
            f"{lr:g}",
            ", ".join(_num(steps_to_target(r.record, target), "-") for r in rs),
            fmt(*mean_std(area(r, "val_acc", CHANCE) for r in rs)),
            fmt(*mean_std(final(r.record, "val_acc") for r in rs)),
            ", ".join(r.status for r in rs),
        ]
        for (norm, lr), rs in _arms(results).items()
    ]
    return Section(
        "BN converges in fewer steps",
        "With batch normalization the network reaches a given accuracy in fewer steps "
        f"(Ioffe & Szegedy 2015, Fig. 2). {CONVERGES.text()}",
        decided,
        f"Area under the validation-accuracy curve, BN minus no norm, paired by seed, at each "
        f"rate where either trains: {gaps}. The {fit.spread()}. The steps to "
        f"{100 * target:.0f}% are shown, not judged.{opened}",
        headers=[
            "norm",
            "lr",
            f"steps to {100 * target:.0f}% val (each seed)",
            "area under val curve",
            "final val acc",
            "status",
        ],  # fmt: skip
        rows=rows,
        open_runs=_open_runs(judged, results, ("batchnorm", "none")),
    )


def _tolerance(results) -> Section:
    bn, none = _largest_lr(results, "batchnorm"), _largest_lr(results, "none")

    def decide(bn, none):
        return verdict(0.0 if bn is None else bn, 0.0 if none is None else none)  # 0: none trains

    tolerates, extra = decide(bn, none), ""
    # Rates still near chance but learning could go either way: the verdict stands only if it
    # holds whichever way they go.
    best_case = decide(_largest_lr(results, "batchnorm", True), none)
    worst_case = decide(bn, _largest_lr(results, "none", True))
    if best_case != tolerates or worst_case != tolerates:
        open_lrs = [
            f"{norm} at {lr:g}"
            for norm in ("batchnorm", "none")
            for lr in LRS
            if _rate_trains(results, norm, lr) is None
        ]
        tolerates = UNTRAINED
        extra = (
            f" Not trained long enough to decide: {', '.join(open_lrs)} ended near chance with "
            "the training loss still falling."
        )
    return Section(
        "BN tolerates higher learning rates",
        "Batch-normalized networks still train at learning rates where the same network without "
        f"normalization diverges or stalls (Ioffe & Szegedy 2015, Sec. 3.3). {TOLERATES.text()}",
        tolerates,
        f"Largest learning rate that still trains (no divergence, final validation accuracy "
        f"above 1.5x chance): with BN {_num(bn, 'none')}, without {_num(none, 'none')}. "
        f"Tried: {', '.join(f'{lr:g}' for lr in LRS)}.{extra}",
    )


def _best_lr(results, norm) -> float | None:
    """The rate of the grid with the norm's highest mean final validation accuracy, over the
    seeds every run has (seeds added later for open verdicts do not move the choice)."""
    scored = [(mean_std(final(r.record, "val_acc") for r in results.shared(norm=norm, lr=lr))[0],
               lr) for lr in LRS if results.shared(norm=norm, lr=lr)]  # fmt: skip
    scored = [s for s in scored if s[0] == s[0]]  # NaN: no run finished
    return max(scored)[1] if scored else None


def _placement(results) -> Section:
    lr_b, lr_a = _best_lr(results, "batchnorm"), _best_lr(results, AFTER_RELU)
    iv = _fit(results, accuracy_on_test).gap(("batchnorm", lr_b), (AFTER_RELU, lr_a))
    chosen = {
        f"before the ReLU at {_num(lr_b, '-')}": results.select(norm="batchnorm", lr=lr_b),
        f"after it at {_num(lr_a, '-')}": results.select(norm=AFTER_RELU, lr=lr_a),
    }
    decided, why = settle(PLACED.decide(iv), chosen, "val_acc", PLACED.margin)
    opened = []
    if decided == INCONCLUSIVE:
        spent = hours(r for v in chosen.values() for r in v)
        why += why_open(PLACED, iv, fewest_seeds(*chosen.values()), spent)
        opened = run_names(*chosen.values())
    val = _fit(results, lambda r: final(r.record, "val_acc"))
    per_rate = "; ".join(
        f"{lr:g}: {val.gap(('batchnorm', lr), (AFTER_RELU, lr)).text()}" for lr in LRS
    )

    def cell(norm, lr, metric):
        return fmt(*mean_std(metric(r) for r in results.select(norm=norm, lr=lr)))

    def val_acc(r):
        return final(r.record, "val_acc")

    return Section(
        "BN before the ReLU trains better than after it",
        "The BN paper normalizes a layer's input to the nonlinearity (Ioffe & Szegedy 2015, "
        "Sec. 3.2) and gives a reason for that placement, not a measurement; the common Keras "
        f"form puts BN after the ReLU. {PLACED.text()}",
        decided,
        f"Final test accuracy, before the ReLU (lr {_num(lr_b, '-')}) minus after it (lr "
        f"{_num(lr_a, '-')}), paired "
        f"by seed: {iv.text()}. For the record, before minus after on validation at each rate: "
        f"{per_rate}.{why}",
        headers=["lr", "before ReLU: val", "after ReLU: val", "before: test", "after: test"],
        rows=[
            [f"{lr:g}"]
            + [cell(n, lr, val_acc) for n in ("batchnorm", AFTER_RELU)]
            + [cell(n, lr, accuracy_on_test) for n in ("batchnorm", AFTER_RELU)]
            for lr in LRS
        ],
        open_runs=opened,
    )


def _scratch(results) -> Section:
    """Two layers that differ only in rounding, which compounds over training like a change of
    seed: their runs of one seed are paired, and the gap must lie inside the margin at every
    rate where torch's BN trains. Not held to a settled curve: two equal layers match at every
    point of training, so a mid-training gap beyond the margin is as much a difference."""
    fit = _fit(results, lambda r: final(r.record, "val_acc"))
    works = [lr for lr in LRS if (ref := results.shared(norm="batchnorm", lr=lr))
             and all(trained(r, CHANCE) for r in ref)]  # fmt: skip
    gaps = {lr: fit.gap(("batchnorm-scratch", lr), ("batchnorm", lr)) for lr in LRS}
    judged = _judge(MATCH, [(lr, gaps[lr]) for lr in works])
    verdicts = {lr: d for lr, _, d in judged}
    rows = [
        [f"{lr:g}"]
        + [fmt(*mean_std(final(r.record, "val_acc") for r in results.select(norm=n, lr=lr)))
           for n in ("batchnorm", "batchnorm-scratch")]
        + [gaps[lr].text(), verdicts.get(lr, "not judged: torch's BN does not train here")]
        for lr in LRS
    ]  # fmt: skip
    decided = all_of(*(d for *_, d in judged)) if judged else INCONCLUSIVE
    why = "" if judged else " torch's BN trained at none of the rates."
    opened = _open(MATCH, judged, results, ("batchnorm", "batchnorm-scratch"))
    return Section(
        "The from-scratch BN matches torch's BN",
        "reslab.nn.BatchNorm2d (analytic backward) trains like torch.nn.BatchNorm2d; the unit "
        f"tests check the two equal to rounding. {MATCH.text()}",
        decided,
        f"Final validation accuracy, reslab's BN minus torch's, paired by seed, at each rate "
        f"where torch's BN trains; the {fit.spread()}.{why}{opened}",
        headers=["lr", "torch BN val acc", "scratch BN val acc", "scratch minus torch", "verdict"],
        rows=rows,
        open_runs=_open_runs(judged, results, ("batchnorm", "batchnorm-scratch")),
    )


def analyze(results, out) -> list[Section]:
    target = results.budget.target_acc
    figures = figures_dir(out)
    conv = _convergence(results, target)
    for lr in LRS:
        arms = {n: results.select(norm=n, lr=lr) for n in (*NORMS, AFTER_RELU)}
        arms = {n: rs for n, rs in arms.items() if rs}
        conv.figures.append(val_acc_figure(arms, figures / f"val_acc_lr{lr:g}.png", f"lr = {lr:g}"))
        conv.captions.append(f"validation accuracy at lr {lr:g}, every arm and seed")
    sections = [conv, _tolerance(results)]
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
