"""Where BN and ReLU go: post- vs pre-activation blocks, BN before vs after ReLU."""

from __future__ import annotations

from reslab.experiments.analysis import (
    AT_LEAST,
    BETTER,
    INCONCLUSIVE,
    Fit,
    Protocol,
    accuracy_on_test,
    cells,
    final,
    fmt,
    hours,
    mean_std,
    run_names,
    settle,
    why_open,
)
from reslab.experiments.plots import figures_dir, val_acc_figure
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.report.experiment import Section

VARIANTS = {
    "post-activation": "resnet20",  # conv-BN-ReLU, ReLU after the addition (He et al. 2015)
    "pre-activation": "preact_resnet20",  # BN-ReLU-conv, clean identity path (He et al. 2016)
    "bn-after-relu": "resnet20_relu_bn",  # conv-ReLU-BN: BN after the nonlinearity
}
CHANGED = "2026-12-05, after the hour and quick runs were seen"
ONE_LR = "no choice: one rate for every layout, SGD 0.1 with momentum 0.9"
SETTLED = (
    f"{CHANGED}: a run counted as settled once its schedule annealed; now the end of each arm's "
    "validation curve must be flat"
)
PRE = Protocol(
    metric="final validation accuracy, pre-activation minus post-activation",
    test=AT_LEAST,
    margin=0.01,
    lrs=ONE_LR,
    changes=(
        SETTLED,
        f"{CHANGED}: was 'supported unless pre-activation ends more than the noise below', "
        "which more noise made easier to meet",
    ),
)
BEFORE = Protocol(
    metric="final validation accuracy, BN before the ReLU (post-activation) minus after it",
    test=BETTER,
    margin=0.01,
    lrs=ONE_LR,
    changes=(SETTLED,),
)


def runs(budget: Budget) -> list[RunSpec]:
    return [
        RunSpec(
            name,
            dict(model=model, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4),
            dict(variant=name),
        )
        for name, model in VARIANTS.items()
    ]


def _val(result) -> float | None:
    return final(result.record, "val_acc")


def _compare(results, a, b, protocol, claim, title) -> Section:
    """The claim on variant a against b, by the protocol's test, paired by seed."""
    arms = {name: results.select(variant=name) for name in VARIANTS}
    fit = Fit(cells(arms, _val))
    iv = fit.gap(a, b)
    compared = {a: arms[a], b: arms[b]}
    decided, why = settle(protocol.decide(iv), compared, "val_acc", protocol.margin)
    if decided == INCONCLUSIVE:
        seeds = max(len(v) for v in compared.values())
        why += why_open(protocol, iv, seeds, hours(r for v in compared.values() for r in v))
    return Section(
        title,
        f"{claim} {protocol.text()}",
        decided,
        f"Final validation accuracy: {a} {fmt(*mean_std(map(_val, arms[a])))}, {b} "
        f"{fmt(*mean_std(map(_val, arms[b])))}. {a} minus {b}, paired by seed: {iv.text()}; "
        f"the {fit.spread()}.{why}",
        open_runs=run_names(*compared.values()) if decided == INCONCLUSIVE else [],
    )


def analyze(results, out) -> list[Section]:
    figures = figures_dir(out)
    pre = _compare(
        results,
        "pre-activation",
        "post-activation",
        PRE,
        "Pre-activation blocks train at least as well as post-activation ones (He et al. 2016, "
        "Table 3, where their lead grows with depth; a grid at one depth tests only the first "
        "part).",
        "Pre-activation vs post-activation",
    )
    relu = _compare(
        results,
        "post-activation",
        "bn-after-relu",
        BEFORE,
        "BN placed before the ReLU works better than after it. The BN and ResNet papers place "
        "it there and give a reason (Ioffe & Szegedy 2015, Sec. 3.2), not a measurement.",
        "BN before vs after ReLU",
    )
    arms = {name: results.select(variant=name) for name in VARIANTS}
    rows = [
        [name, model, fmt(*mean_std(map(_val, arms[name]))),
         fmt(*mean_std(map(accuracy_on_test, arms[name])))]
        for name, model in VARIANTS.items()
        if arms[name]
    ]  # fmt: skip
    pre.figures.append(val_acc_figure(arms, figures / "placement_val.png", "block layouts"))
    pre.captions.append("validation accuracy of the three layouts, every seed")
    pre.headers, pre.rows = ["variant", "model", "val acc", "test acc"], rows
    return [pre, relu]


EXPERIMENT = Experiment(
    "placement",
    "Placement of BN and ReLU in the block",
    "resnet20 with post-activation blocks, pre-activation blocks, and BN after the ReLU.",
    runs,
    analyze,
)
