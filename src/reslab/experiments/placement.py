"""Where BN and ReLU go: post- vs pre-activation blocks, BN before vs after ReLU."""

from __future__ import annotations

from reslab.experiments.analysis import (
    compare,
    final,
    fmt,
    judge,
    mean_std,
    val_size,
)
from reslab.experiments.analysis import (
    verdict as decide,
)
from reslab.experiments.figures import figures_dir, val_acc_figure
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.report.experiment import Section

VARIANTS = {
    "post-activation": "resnet20",  # conv-BN-ReLU, ReLU after the addition (He et al. 2015)
    "pre-activation": "preact_resnet20",  # BN-ReLU-conv, clean identity path (He et al. 2016)
    "bn-after-relu": "resnet20_relu_bn",  # conv-ReLU-BN: BN after the nonlinearity
}


def runs(budget: Budget) -> list[RunSpec]:
    return [
        RunSpec(
            name,
            dict(model=model, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4),
            dict(variant=name),
        )
        for name, model in VARIANTS.items()
    ]


def _compare(results, a, b, claim, title, at_least_as_well=False) -> Section:
    """The claim that variant a trains better than b; with `at_least_as_well`, that a is not
    worse than b beyond the noise (a tie supports it, a decided loss refutes it)."""
    va = mean_std(final(r.record, "val_acc") for r in results.select(variant=a))
    vb = mean_std(final(r.record, "val_acc") for r in results.select(variant=b))
    seeds = len(results.select(variant=a))
    verdict, gap, noise = compare(va, vb, val_size(results), seeds)
    if at_least_as_well:
        verdict = decide(va[0], vb[0], margin=-noise, refute_margin=noise)
    compared = results.select(variant=a) + results.select(variant=b)
    verdict, why = judge(verdict, va, vb, val_size(results), seeds, compared)
    test = (
        f" The claim holds unless {a} ends more than the noise below {b}."
        if at_least_as_well
        else ""
    )
    return Section(
        title,
        claim,
        verdict,
        f"Final validation accuracy: {a} {fmt(*va)}, {b} {fmt(*vb)}: a gap of "
        f"{100 * gap:.1f} points against a noise level of {100 * noise:.1f} (the "
        f"larger of the spread over seeds, the 95% sampling noise of "
        f"{val_size(results)} validation images, and 1 point).{test}{why}",
    )


def analyze(results, out) -> list[Section]:
    figures = figures_dir(out)
    pre = _compare(
        results,
        "pre-activation",
        "post-activation",
        "Pre-activation blocks train at least as well as post-activation ones (He et al. 2016, "
        "Table 3, where their lead grows with depth; a grid at one depth tests only the first "
        "part).",
        "Pre-activation vs post-activation",
        at_least_as_well=True,
    )
    relu = _compare(
        results,
        "post-activation",
        "bn-after-relu",
        "BN placed before the ReLU (as in the BN and ResNet papers) works better than after it.",
        "BN before vs after ReLU",
    )
    seed0 = [r for r in results.runs if r.seed == 0]
    rows = [
        [
            r.spec.name,
            VARIANTS[r.spec.name],
            fmt(*mean_std(final(x.record, "val_acc") for x in results.select(variant=r.spec.name))),
            fmt(
                *mean_std(
                    x.record.summary.get("test_acc") for x in results.select(variant=r.spec.name)
                )
            ),
        ]
        for r in seed0
    ]
    pre.figures.append(val_acc_figure(seed0, figures / "placement_val.png", "block layouts"))
    pre.headers, pre.rows = ["variant", "model", "val acc", "test acc"], rows
    return [pre, relu]


EXPERIMENT = Experiment(
    "placement",
    "Placement of BN and ReLU in the block",
    "resnet20 with post-activation blocks, pre-activation blocks, and BN after the ReLU.",
    runs,
    analyze,
)
