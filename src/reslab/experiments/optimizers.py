"""Optimizer vs optimizer on one network (resnet20 unless --model says otherwise), each at its
best learning rate from a small sweep."""

from __future__ import annotations

from reslab.experiments.analysis import (
    SUPPORTED,
    compare,
    final,
    fmt,
    judge,
    mean_std,
    val_size,
)
from reslab.experiments.figures import figures_dir, val_acc_figure
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
    _, lrs = OPTIMIZERS[name]

    def score(lr):
        m = _val(results, name, lr)[0]
        return m if m == m else -1.0

    return max(lrs, key=score)


def analyze(results, out) -> list[Section]:
    figures = figures_dir(out)
    rows, best_runs, scores, edges, best = [], [], {}, [], {}
    for name in OPTIMIZERS:
        lr = best[name] = best_lr(results, name)
        chosen = results.select(optimizer=name, lr=lr)
        best_runs += [r for r in chosen if r.seed == 0]
        val = mean_std(final(r.record, "val_acc") for r in chosen)
        test = mean_std(r.record.summary.get("test_acc") for r in chosen)
        scores[name] = val
        sweep = ", ".join(f"{x:g}: {fmt(*_val(results, name, x))}" for x in OPTIMIZERS[name][1])
        edge = _edge(name, lr)
        rows.append([name, f"{lr:g}{' (edge)' if edge else ''}", fmt(*val), fmt(*test), sweep])
        if edge:
            edges.append(f"{name} ({edge})")
    fig = val_acc_figure(
        best_runs, figures / "optimizers_val.png", "each optimizer at its best learning rate"
    )
    momentum, plain = scores["sgd-momentum"], scores["sgd"]
    seeds = len(results.select(optimizer="sgd", lr=OPTIMIZERS["sgd"][1][0]))
    n = val_size(results)
    verdict, gap, noise = compare(momentum, plain, n, seeds)
    compared = [r for name in ("sgd-momentum", "sgd")
                for r in results.select(optimizer=name, lr=best[name])]  # fmt: skip
    verdict, why = judge(verdict, momentum, plain, n, seeds, compared)
    return [
        Section(
            "Momentum speeds up SGD",
            "At an equal budget and each at its best learning rate, SGD "
            "with momentum reaches a higher accuracy than plain SGD (Sutskever et al. 2013).",
            verdict,
            f"Validation accuracy at the best lr: SGD + momentum {fmt(*momentum)}, plain SGD "
            f"{fmt(*plain)}: a gap of {100 * gap:.1f} points against a noise level of "
            f"{100 * noise:.1f} (spread over seeds, 95% sampling noise of the validation split, "
            "1 point). " + _ranking(scores, n, seeds) + _edges_text(edges, best) + why,
            figures=[fig],
            headers=["optimizer", "best lr", "val acc", "test acc", "sweep (lr: val acc)"],
            rows=rows,
        )
    ]


def _edge(name: str, lr: float) -> str:
    """Where lr lies in name's sweep: at the "top" (its largest rate), the "bottom", or inside
    it ("")."""
    lrs = OPTIMIZERS[name][1]
    return "top" if lr == lrs[-1] else "bottom" if lr == lrs[0] else ""


def _ranking(scores: dict, n: int, seeds: int) -> str:
    """The best optimizer, and which others end within the noise of it (`compare`'s rule);
    an optimizer without a final accuracy (no run finished an epoch) is named apart."""
    finite = {k: v for k, v in scores.items() if v[0] == v[0]}
    missing = [k for k in scores if k not in finite]
    gone = f" No final accuracy for {', '.join(missing)}." if missing else ""
    if not finite:
        return "No optimizer has a final accuracy to rank."
    winner = max(finite, key=lambda k: finite[k][0])
    tied = [
        k
        for k in finite
        if k != winner and compare(finite[winner], finite[k], n, seeds)[0] != SUPPORTED
    ]
    text = f"Best overall at this budget: {winner} ({fmt(*finite[winner])})"
    if not tied:
        return text + ", ahead of every other beyond the noise." + gone
    return (
        text + f"; {', '.join(tied)} end within the noise of it, so these runs do not rank "
        "them against each other." + gone
    )


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
    "optimizer's learning rate is picked from a three-point sweep on the validation split.",
    runs,
    analyze,
    model="resnet20",
)
