"""Optimizer vs optimizer on one network (resnet20 unless --model says otherwise), each at its
best learning rate from a small sweep."""

from __future__ import annotations

from itertools import combinations

from reslab.experiments.analysis import (
    BETTER,
    CHANCE,
    INCONCLUSIVE,
    Fit,
    Protocol,
    accuracy_on_test,
    area,
    cells,
    fewest_seeds,
    final,
    fmt,
    hours,
    mean_std,
    run_names,
    trained,
    why_open,
)
from reslab.experiments.plots import arms_figure, figures_dir, val_acc_figure
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.report.experiment import Section

# Every optimizer gets the same weight decay (He et al. 2015's 1e-4: an L2 penalty, decoupled for
# AdamW, where it is multiplied by the lr), so that decay does not rank them.
WEIGHT_DECAY = 1e-4
# name -> (config overrides, learning rates swept on the validation split). With momentum 0.9 the
# effective step is lr / (1 - 0.9), so plain SGD's sweep is momentum's times ten: both cover the
# same effective rates, 0.1 to 3.
OPTIMIZERS = {
    "sgd": (dict(optimizer="sgd", momentum=0.0), (0.1, 0.3, 1.0, 3.0)),
    "sgd-momentum": (dict(optimizer="sgd", momentum=0.9), (0.01, 0.03, 0.1, 0.3)),
    "nesterov": (dict(optimizer="nesterov", momentum=0.9), (0.01, 0.03, 0.1, 0.3)),
    "adam": (dict(optimizer="adam", momentum=0.9), (3e-4, 1e-3, 3e-3, 1e-2)),
    "adamw": (dict(optimizer="adamw", momentum=0.9), (3e-4, 1e-3, 3e-3, 1e-2)),
    "rmsprop": (dict(optimizer="rmsprop", momentum=0.9), (1e-4, 3e-4, 1e-3, 3e-3)),
}


CHANGED = "2026-12-05, after the hour and quick runs were seen"
CHOSEN = (
    "each optimizer at the rate of its sweep with the highest mean final validation accuracy "
    "(chosen on validation, judged on other images)"
)
MOMENTUM = Protocol(
    metric="the area under the training-accuracy curve (its mean over the epochs; epochs "
    "after a divergence count at chance): how fast each optimizer fits the training set",
    test=BETTER,
    margin=0.01,
    lrs=f"{CHOSEN}; the two sweeps cover the same effective rates, lr / (1 - momentum)",
    changes=(
        f"{CHANGED}: was final validation accuracy, on the split the rate was chosen on, with "
        "weight decay differing by optimizer and plain SGD's sweep reaching only momentum's "
        "lowest effective rate",
    ),
)
RANKED = Protocol(
    metric="final test accuracy (the test split, read once per run)",
    test=BETTER,
    margin=0.01,
    lrs=CHOSEN,
    changes=(f"{CHANGED}: was the best on validation against the rest, uncorrected",),
)


def runs(budget: Budget, model: str) -> list[RunSpec]:
    """Every (optimizer, lr) pair once: the sweep picks each optimizer's best lr by validation
    accuracy, and that same run is its curve. Equal budgets: same epochs, batch and schedule."""
    specs = []
    for name, (overrides, lrs) in OPTIMIZERS.items():
        for lr in lrs:
            specs.append(
                RunSpec(
                    f"{name}-lr{lr:g}",
                    dict(model=model, lr=lr, weight_decay=WEIGHT_DECAY, **overrides),
                    dict(optimizer=name, lr=lr),
                )
            )
    return specs


def _val(results, name, lr):
    return mean_std(final(r.record, "val_acc") for r in results.select(optimizer=name, lr=lr))


def best_lr(results, name) -> float:
    """The rate of name's sweep with the highest mean final validation accuracy over the seeds
    every run has (seeds added later for open verdicts do not move the choice)."""
    _, lrs = OPTIMIZERS[name]

    def score(lr):
        m = mean_std(final(r.record, "val_acc") for r in results.shared(optimizer=name, lr=lr))[0]
        return m if m == m else -1.0

    return max(lrs, key=score)


def _fit(results, metric) -> Fit:
    """`metric` over every (optimizer, lr) cell, its spread pooled over the cells where every
    seed trains."""
    arms = {
        (name, lr): results.select(optimizer=name, lr=lr)
        for name, (_, lrs) in OPTIMIZERS.items()
        for lr in lrs
    }
    working = {k: v for k, v in arms.items() if v and all(trained(r, CHANCE) for r in v)}
    return Fit(cells(arms, metric), noise=Fit(cells(working, metric)))


def _train_area(r) -> float:
    return area(r, "train_acc", CHANCE)


def _momentum(results, best, rows, edges, figures) -> Section:
    iv = _fit(results, _train_area).gap(
        ("sgd-momentum", best["sgd-momentum"]), ("sgd", best["sgd"])
    )
    decided, why, opened = MOMENTUM.decide(iv), "", []
    if decided == INCONCLUSIVE:
        arms = [results.select(optimizer=n, lr=best[n]) for n in ("sgd-momentum", "sgd")]
        why = why_open(MOMENTUM, iv, fewest_seeds(*arms), hours(r for a in arms for r in a))
        opened = run_names(*arms)
    return Section(
        "Momentum speeds up SGD",
        "At an equal budget and each at its best learning rate, SGD with momentum fits the "
        f"training set faster than plain SGD (Sutskever et al. 2013). {MOMENTUM.text()}",
        decided,
        f"Area under the training-accuracy curve, SGD + momentum (lr {best['sgd-momentum']:g}) "
        f"minus plain SGD (lr {best['sgd']:g}), paired by seed: {iv.text()}; the "
        f"{_fit(results, _train_area).spread()}. Every optimizer has weight decay "
        f"{WEIGHT_DECAY:g}.{_edges_text(edges, best)}{why}",
        figures=figures,
        captions=[
            "training accuracy of each optimizer at its chosen rate (the claim's curve), each seed",
            "validation accuracy of each optimizer at its chosen rate, every seed",
        ],
        headers=[
            "optimizer",
            "chosen lr",
            "val acc",
            "test acc",
            "train-acc area",
            "sweep (lr: val acc)",
        ],  # fmt: skip
        rows=rows,
        open_runs=opened,
    )


def analyze(results, out) -> list[Section]:
    figures = figures_dir(out)
    rows, edges, best, arms = [], [], {}, {}
    for name in OPTIMIZERS:
        lr = best[name] = best_lr(results, name)
        chosen = arms[name] = results.select(optimizer=name, lr=lr)
        sweep = ", ".join(f"{x:g}: {fmt(*_val(results, name, x))}" for x in OPTIMIZERS[name][1])
        edge = _edge(name, lr)
        rows.append([name, f"{lr:g}{' (edge)' if edge else ''}", fmt(*_val(results, name, lr)),
                     fmt(*mean_std(map(accuracy_on_test, chosen))),
                     fmt(*mean_std(map(_train_area, chosen))), sweep])  # fmt: skip
        if edge:
            edges.append(f"{name} ({edge})")
    title = "each optimizer at its chosen learning rate"
    train = arms_figure(arms, "train_acc", figures / "optimizers_train.png", title,
                        "training accuracy (%)")  # fmt: skip
    val = val_acc_figure(arms, figures / "optimizers_val.png", title)
    return [_momentum(results, best, rows, edges, [train, val]), _ranking(results, best)]


def _edge(name: str, lr: float) -> str:
    """Where lr lies in name's sweep: at the "top" (its largest rate), the "bottom", or inside
    it ("")."""
    lrs = OPTIMIZERS[name][1]
    return "top" if lr == lrs[-1] else "bottom" if lr == lrs[0] else ""


def _ranking(results, best) -> Section:
    """Every pair of optimizers at their chosen rates on test, with intervals held jointly over
    all pairs (Bonferroni: a Tukey-type family, a little wider than Tukey's); a best optimizer
    is named only when its lead over every other is decided."""
    fit = _fit(results, accuracy_on_test)
    names = [n for n in OPTIMIZERS if (n, best[n]) in fit.arms]
    pairs = list(combinations(names, 2))
    gaps = {(a, b): fit.gap((a, best[a]), (b, best[b]), family=len(pairs)) for a, b in pairs}
    winners = [n for n in names if _leads_all(n, gaps)]
    missing = [n for n in OPTIMIZERS if n not in names]
    if winners:
        outcome = f"Best at this budget: {winners[0]}, ahead of every other beyond the interval."
    else:
        decided = [f"{a} over {b}" if g.low > 0 else f"{b} over {a}"
                   for (a, b), g in gaps.items() if g.low > 0 or g.high < 0]  # fmt: skip
        outcome = "No optimizer leads every other: these runs name no best one" + (
            f"; decided pairs: {', '.join(decided)}." if decided else "; no pair is decided."
        )
    gone = f" No test accuracy for {', '.join(missing)}." if missing else ""
    return Section(
        "Optimizers ranked at this budget",
        f"Which optimizer is best at this budget, if any. {RANKED.text()} The intervals are "
        f"held jointly over all {len(pairs)} pairs.",
        "",
        f"{outcome}{gone} The {fit.spread()}.",
        headers=["pair", "test accuracy, first minus second"],
        rows=[[f"{a} - {b}", g.text()] for (a, b), g in gaps.items()],
        # No best named: more seeds at every chosen rate may still name one.
        open_runs=[]
        if winners
        else run_names(*(results.select(optimizer=n, lr=best[n]) for n in names)),  # fmt: skip
    )


def _leads_all(name: str, gaps: dict) -> bool:
    """Whether `name` is ahead of every other optimizer beyond its interval."""
    leads = [(g if a == name else g.flip()).low > 0 for (a, b), g in gaps.items() if name in (a, b)]
    return bool(leads) and all(leads)


def _edges_text(edges: list[str], best: dict) -> str:
    """Which best learning rates lie at an edge of their sweep, and which way a wider sweep
    would likely move the momentum claim's gap: towards the one of the two that peaked at an
    edge, when the other peaked inside its sweep."""
    if not edges:
        return ""
    text = (
        f" The best lr of {', '.join(edges)} lies at an edge of its sweep, so a wider sweep "
        "could still raise it."
    )
    plain, momentum = _edge("sgd", best["sgd"]), _edge("sgd-momentum", best["sgd-momentum"])
    if plain and not momentum:
        text += (
            f" For the claim, a wider sweep would likely move the gap towards plain SGD: its "
            f"best lr, {best['sgd']:g}, is the {'largest' if plain == 'top' else 'smallest'} "
            "tried, while momentum SGD peaked inside its sweep."
        )
    elif momentum and not plain:
        text += (
            f" For the claim, a wider sweep would likely move the gap towards momentum SGD: "
            f"its best lr, {best['sgd-momentum']:g}, is the "
            f"{'largest' if momentum == 'top' else 'smallest'} tried, while plain SGD peaked "
            "inside its sweep."
        )
    return text


EXPERIMENT = Experiment(
    "optimizers",
    "Optimizers at equal budgets",
    "{model} trained with SGD, SGD + momentum, Nesterov, Adam, AdamW and RMSprop; each "
    "optimizer's learning rate is picked from a four-point sweep on the validation split.",
    runs,
    analyze,
    model="resnet20",
)
