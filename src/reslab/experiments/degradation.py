"""Plain vs residual at growing depth: the degradation problem (He et al. 2015, Fig. 6)."""

from __future__ import annotations

from reslab.experiments.analysis import (
    AT_LEAST,
    BETTER,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    Fit,
    Protocol,
    all_of,
    cells,
    fewest_seeds,
    fmt,
    hours,
    mean_std,
    parts,
    run_names,
    settle,
    why_open,
)
from reslab.experiments.plots import arms_figure, figures_dir
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.models.zoo import NARROW
from reslab.report.experiment import Section

CHANGED = "2026-12-05, after the hour and quick runs were seen"
ERROR = "final-epoch training error (on the augmented batches, as in the paper's Fig. 6)"
SAME_LR = "one rate for every network, SGD 0.1 with momentum 0.9 (He et al. 2015)"
SETTLED = (
    f"{CHANGED}: a run counted as settled once its schedule annealed; now the end of each arm's "
    "curve must be flat"
)
PLAIN_WORSE = Protocol(
    metric=f"{ERROR}, deepest minus shallowest plain net",
    test=BETTER,
    margin=0.01,
    lrs=SAME_LR,
    changes=(SETTLED,),
)
RESIDUAL_BETTER = Protocol(
    metric=f"{ERROR}, shallowest minus deepest ResNet",
    test=BETTER,
    margin=0.01,
    lrs=SAME_LR,
    changes=(SETTLED,),
)
REMOVED = Protocol(
    metric=f"{ERROR}, in three parts, all needed: the plain nets degrade (deep minus shallow, "
    "tested as better), the ResNets do not (shallow minus deep, tested as at least as good) and "
    "the plain degradation exceeds the residual one (tested as better)",
    test=AT_LEAST,
    margin=0.01,
    lrs=SAME_LR,
    changes=(
        SETTLED,
        f"{CHANGED}: the ResNets' part was 'no degradation found', which more noise made "
        "easier to meet",
    ),
)


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


def _error(result) -> float | None:
    """Training error over the last epoch; None for a run that did not finish."""
    rows = [m for m in result.record.metrics if m.get("train_acc") is not None]
    return 1 - rows[-1]["train_acc"] if rows and result.status == "done" else None


def _arms(results, kinds=("plain", "resnet"), depths=None) -> dict[str, list]:
    depths = depths or results.budget.depths
    return {
        network(results.budget, k, d): results.select(kind=k, depth=d)
        for k in kinds
        for d in depths
    }


def _fit(results) -> Fit:
    return Fit(cells(_arms(results), _error))


def _decide(protocol, iv, results, arms) -> tuple[str, str]:
    """The protocol's verdict, held to settled curves; for an open one, what would decide it."""
    decided, why = settle(protocol.decide(iv), arms, "train_acc", protocol.margin)
    if decided == INCONCLUSIVE:
        spent = hours(r for runs in arms.values() for r in runs)
        why += why_open(protocol, iv, fewest_seeds(*arms.values()), spent)
    return decided, why


def _narrow(results) -> str:
    if not results.budget.narrow:
        return ""
    return (
        f" The networks are the narrow twins ({'/'.join(map(str, NARROW))} channels, half the "
        "paper's width) at the paper's depths: the depth question at a CPU's cost."
    )


def _row(depth: int, runs: list) -> list[str]:
    val = [(r.record.metrics[-1].get("val_acc") if r.record.metrics else None) for r in runs]
    return [str(depth), fmt(*mean_std(map(_error, runs))), fmt(*mean_std(val))]


def _section(results, kind, protocol, claim, title) -> Section:
    depths = results.budget.depths
    shallow, deep = (network(results.budget, kind, d) for d in (depths[0], depths[-1]))
    fit = _fit(results)
    iv = fit.gap(deep, shallow) if kind == "plain" else fit.gap(shallow, deep)
    judged = _arms(results, (kind,), (depths[0], depths[-1]))
    decided, why = _decide(protocol, iv, results, judged)
    arms = _arms(results, (kind,))
    listing = ", ".join(f"{name} {fmt(*mean_std(map(_error, rs)))}" for name, rs in arms.items())
    lead = f"{deep} minus {shallow}" if kind == "plain" else f"{shallow} minus {deep}"
    return Section(
        title,
        f"{claim} {protocol.text()}",
        decided,
        f"Final-epoch training error: {listing}. {lead}, paired by seed: {iv.text()}; the "
        f"{fit.spread()}.{_narrow(results)}{why}",
        headers=["depth", "training error", "final val acc"],
        rows=[_row(d, rs) for d, rs in zip(depths, arms.values(), strict=True)],
        open_runs=run_names(*judged.values()) if decided == INCONCLUSIVE else [],
    )


def _removed(results) -> Section:
    """The skip connections' part: the plain nets degrade with depth, the ResNets of the same
    depths do not, and the plain degradation exceeds the residual one."""
    depths = results.budget.depths
    name = {(k, d): network(results.budget, k, d) for k in ("plain", "resnet") for d in depths}
    p20, p56 = name["plain", depths[0]], name["plain", depths[-1]]
    r20, r56 = name["resnet", depths[0]], name["resnet", depths[-1]]
    fit = _fit(results)
    plain, residual = fit.gap(p56, p20), fit.gap(r20, r56)
    apart = fit.contrast({p56: 1.0, p20: -1.0, r56: -1.0, r20: 1.0})
    better = Protocol(REMOVED.metric, BETTER, REMOVED.margin, REMOVED.lrs)
    verdicts = parts([(better, plain), (REMOVED, residual), (better, apart)])
    none = verdicts[0] == NOT_SUPPORTED  # no degradation to remove: the claim is idle
    compared = _arms(results, depths=(depths[0], depths[-1]))
    decided = INCONCLUSIVE if none else all_of(*verdicts)
    decided, why = settle(decided, compared, "train_acc", REMOVED.margin)
    if none:
        why += " The plain nets show no degradation of the margin's size to remove here."
    return Section(
        "Skip connections remove the degradation",
        "At the depth where the plain network trains worse than its shallow twin, the ResNet of "
        "the same depth does not: the degradation is an optimization problem that residual "
        f"learning solves (He et al. 2015, Fig. 6, left against middle). {REMOVED.text()}",
        decided,
        f"Training error, paired by seed: plain {p56} minus {p20} {plain.text()}; residual "
        f"{r20} minus {r56} {residual.text()} (at least as good unless below "
        f"-{100 * REMOVED.margin:g}); the plain degradation minus the residual one "
        f"{apart.text()}. The {fit.spread()}.{why}",
        open_runs=run_names(*compared.values()) if decided == INCONCLUSIVE else [],
    )


def analyze(results, out) -> list[Section]:
    figures = figures_dir(out)
    plain = _section(
        results,
        "plain",
        PLAIN_WORSE,
        "Deeper plain networks have higher training error: depth alone makes "
        "optimization harder (He et al. 2015, Fig. 6 left).",
        "Deeper plain nets train worse",
    )
    res = _section(
        results,
        "resnet",
        RESIDUAL_BETTER,
        "Deeper residual networks have lower training error (He et al. 2015, Fig. 6 middle).",
        "Deeper residual nets train better",
    )
    for section, kind in ((plain, "plain"), (res, "resnet")):
        section.figures.append(
            arms_figure(
                _arms(results, (kind,)),
                "train_acc",
                figures / f"train_error_{kind}.png",
                f"{kind} networks: training error",
                "training error (%)",
                transform=lambda a: 100 * (1 - a),
            )
        )
        section.captions.append(f"training error of the {kind} networks, every seed")
    return [plain, res, _removed(results)]


EXPERIMENT = Experiment(
    "degradation",
    "Degradation: plain vs residual networks at growing depth",
    "CIFAR plain nets and ResNets of the same depths (option A shortcuts), SGD 0.1, momentum "
    "0.9, weight decay 1e-4.",
    runs,
    analyze,
)
