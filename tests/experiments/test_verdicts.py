"""Verdicts are computed from the runs' numbers: the same code says supported or not."""

import math
from pathlib import Path

import pytest

from reslab.experiments import (
    BUDGETS,
    batchnorm,
    degradation,
    gradients,
    optimizers,
    placement,
)
from reslab.experiments.analysis import (
    INCONCLUSIVE,
    UNTRAINED,
    all_of,
    compare,
    progress,
    unless_untrained,
    verdict,
    within_noise,
)
from reslab.experiments.runner import ExperimentResults, RunResult
from reslab.report.runs import RunRecord


def _record(name, accs, step=27, losses=None, lrs=None):
    """A run's epoch rows: accuracies as given; training loss flat at 1.0 (a settled run)
    and a constant lr unless given."""
    losses = losses or [1.0] * len(accs)
    lrs = lrs or [0.1] * len(accs)
    rows = [
        {
            "epoch": i + 1,
            "step": step * (i + 1),
            "train_loss": losses[i],
            "train_acc": a,
            "val_loss": 1.0,
            "val_acc": a,
            "lr": lrs[i],
            "epoch_time_s": 1,
            "images_per_s": 3500,
        }
        for i, a in enumerate(accs)
    ]
    return RunRecord(Path(name), {"dataset": "cifar10-sample"}, rows, {"test_acc": accs[-1]})


def _results(exp, curves, tmp_path, seeds=1, budget="quick"):
    """Runs of exp's grid at a budget; curves(group) or curves(group, seed) -> (accuracies,
    status) or (accuracies, status, training losses)."""
    runs = []
    for spec in exp.grid(BUDGETS[budget]):
        for seed in range(seeds):
            out = curves(spec.group, seed) if seeds > 1 else curves(spec.group)
            accs, status, losses = (*out, None) if len(out) == 2 else out
            runs.append(RunResult(spec, seed, _record(spec.name, accs, losses=losses), status))
    return ExperimentResults(exp, BUDGETS[budget], tmp_path, runs)


def test_batchnorm_supported_when_bn_is_faster_and_survives_high_lr(tmp_path):
    def curves(g):
        if g["norm"] == "none":
            return ([0.1, 0.1, 0.1], "diverged") if g["lr"] >= 0.5 else ([0.2, 0.25, 0.32], "done")
        return [0.25, 0.35, 0.45], "done"

    sections = batchnorm.analyze(_results(batchnorm.EXPERIMENT, curves, tmp_path), tmp_path)
    verdicts = {s.title: s.verdict for s in sections}
    placement = verdicts.pop("BN before the ReLU trains better than after it")
    assert list(verdicts.values()) == ["supported"] * 3
    assert placement == "inconclusive at this budget"  # the same curves before and after
    assert "with BN 54" in sections[0].evidence and "without 81" in sections[0].evidence
    assert all(f.is_file() for f in sections[0].figures)


def test_batchnorm_not_supported_when_the_data_says_otherwise(tmp_path):
    def curves(g):
        if g["norm"] == "none":
            return [0.35, 0.4, 0.45], "done"
        if g["norm"] == "batchnorm-scratch":
            return [0.1, 0.15, 0.2], "done"
        return ([0.1, 0.1, 0.1], "diverged") if g["lr"] >= 0.5 else ([0.2, 0.31, 0.4], "done")

    sections = batchnorm.analyze(_results(batchnorm.EXPERIMENT, curves, tmp_path), tmp_path)
    verdicts = {s.title: s.verdict for s in sections}
    verdicts.pop("BN before the ReLU trains better than after it")
    scratch = verdicts.pop("The from-scratch BN matches torch's BN")
    assert list(verdicts.values()) == ["not supported"] * 2
    # One seed: a gap beyond the sampling noise, but torch's own spread is unmeasured.
    assert scratch == "inconclusive at this budget"
    assert "--seeds 2" in sections[-1].evidence


def _scratch_section(curves, tmp_path):
    """The from-scratch BN's verdict on two seeds of the BN runs that curves(group, seed) gives."""
    results = _results(batchnorm.EXPERIMENT, curves, tmp_path, seeds=2)
    results.runs[:] = [r for r in results.runs if r.spec.group["norm"] != "none"]
    return batchnorm._scratch(results, 0.1)


@pytest.mark.parametrize(
    ("scratch_shift", "spread", "expected"),
    [
        (0.06, 0.01, "not supported"),  # 6 points apart, torch's BN varies by 1 over seeds
        (0.06, 0.06, "supported"),  # the same gap inside torch's own seed-to-seed spread
        (0.0, 0.0, "supported"),
    ],
)
def test_scratch_bn_is_judged_against_the_seed_spread_of_torchs_bn(
    tmp_path, scratch_shift, spread, expected
):
    def curves(g, seed):
        base = 0.80 + (spread if seed else -spread) / 2  # two seeds `spread` apart
        if g["norm"] == "batchnorm-scratch":
            return [0.5, 0.7, base - scratch_shift], "done"
        return [0.5, 0.7, base], "done"

    section = _scratch_section(curves, tmp_path)
    assert section.verdict == expected
    assert section.headers[-1] == "noise (points)"


@pytest.mark.parametrize(("gap", "expected"), [(0.12, "supported"), (0.16, "not supported")])
def test_scratch_bn_bound_holds_for_all_rates_together(tmp_path, gap, expected):
    """Seeds 0.08 apart in every cell (std 0.057): a 12-point gap at one rate of four lies
    beyond that rate's own 95% bound (1.96 std = 11.1 points) but within the bound set for four
    rates at once (2.50 std = 14.1 points); 16 points lies beyond both."""

    def curves(g, seed):
        base = 0.70 + (0.04 if seed else -0.04)
        if g["norm"] == "batchnorm-scratch" and g["lr"] == 0.1:
            return [0.5, 0.6, base - gap], "done"
        return [0.5, 0.6, base], "done"

    section = _scratch_section(curves, tmp_path)
    assert section.verdict == expected
    assert "z = 2.50" in section.evidence and "8 cells of 2 seeds" in section.evidence
    assert [row[-1] for row in section.rows] == ["14.1"] * 4


def test_progress_tells_settled_runs_from_ones_still_learning():
    falling = progress(_record("a", [0.3, 0.4, 0.5], losses=[2.0, 1.6, 1.3]))
    flat = progress(_record("b", [0.3, 0.4, 0.5], losses=[1.02, 1.01, 1.0]))
    annealed = progress(
        _record("c", [0.3, 0.4, 0.5], losses=[2.0, 1.6, 1.3], lrs=[0.1, 0.05, 0.005])
    )
    short = progress(_record("d", [0.3, 0.4]))
    assert not falling.settled and falling.fall == pytest.approx((2.0 / 1.3) ** 0.5 - 1)
    assert flat.settled and annealed.settled and not short.settled
    assert falling.steps == 81 and falling.train_error == pytest.approx(0.5)
    decided, why = unless_untrained("not supported", [flat, falling])
    assert decided == UNTRAINED == "inconclusive: not trained long enough"
    assert "a: 81 steps, training error 50.0%, training loss still falling 24.0%" in why
    assert unless_untrained("not supported", [flat, annealed]) == ("not supported", "")
    assert all_of("supported", UNTRAINED) == UNTRAINED


def test_degradation_is_not_decided_while_the_nets_still_learn(tmp_path):
    def curves(g):  # deeper plain nets behind, but every loss still falling 20% an epoch
        rank = (20, 32, 44, 56).index(g["depth"])
        return [0.3, 0.4, 0.5 - 0.05 * rank], "done", [1.44, 1.2, 1.0]

    results = _results(degradation.EXPERIMENT, curves, tmp_path)
    for run in results.runs:  # ten minutes an epoch
        for row in run.record.metrics:
            row["epoch_time_s"] = 600
    plain, res, removed = degradation.analyze(results, tmp_path)
    assert plain.verdict == res.verdict == removed.verdict == UNTRAINED
    assert "still falling 20.0% per epoch" in plain.evidence and "steps" in plain.evidence
    # what deciding would cost: the two compared runs, 3 epochs of 10 min each
    assert "Those runs took 1.00 h of training here" in plain.evidence
    assert "each further epoch of all of them costs about 20 min" in plain.evidence


def test_bn_lr_tolerance_waits_for_rates_still_learning_near_chance(tmp_path):
    def curves(g):
        if g["norm"] == "none" and g["lr"] >= 0.5:  # near chance, loss still falling fast
            return [0.1, 0.1, 0.12], "done", [2.6, 2.3, 2.0]
        return [0.5, 0.6, 0.7], "done"

    sections = batchnorm.analyze(_results(batchnorm.EXPERIMENT, curves, tmp_path), tmp_path)
    tolerance = sections[1]
    assert tolerance.verdict == UNTRAINED
    assert "none at 0.5, none at 1" in tolerance.evidence


@pytest.mark.parametrize(
    ("after_relu", "expected"),
    [(0.30, "supported"), (0.60, "not supported"), (0.45, "inconclusive at this budget")],
)
def test_batchnorm_placement_verdict(tmp_path, after_relu, expected):
    def curves(g):
        if g["norm"] == "batchnorm-after-relu":
            return [0.2, after_relu - 0.05, after_relu], "done"
        return [0.25, 0.4, 0.45], "done"

    exp = batchnorm.EXPERIMENT
    runs = []
    for spec in exp.grid(BUDGETS["quick"], "small_cnn"):
        accs, status = curves(spec.group)
        runs.append(RunResult(spec, 0, _record(spec.name, accs), status))
    results = ExperimentResults(exp, BUDGETS["quick"], tmp_path, runs, "small_cnn")
    sections = {s.title: s for s in batchnorm.analyze(results, tmp_path)}
    placement = sections["BN before the ReLU trains better than after it"]
    assert placement.verdict == expected
    assert "before the ReLU 45.0%" in placement.evidence


def test_models_without_a_placement_twin_skip_that_claim(tmp_path):
    specs = batchnorm.EXPERIMENT.grid(BUDGETS["quick"], "small_resnet")
    assert {s.group["norm"] for s in specs} == {"batchnorm", "batchnorm-scratch", "none"}
    assert {s.overrides["model"] for s in specs} == {"small_resnet"}
    with pytest.raises(ValueError, match="takes no --model"):
        degradation.EXPERIMENT.grid(BUDGETS["quick"], "small_cnn")


@pytest.mark.parametrize(
    ("plain_slope", "expected"),
    [(0.05, "supported"), (-0.05, "not supported"), (0.001, "inconclusive at this budget")],
)
def test_degradation_trend(tmp_path, plain_slope, expected):
    def curves(g):
        depth_rank = (20, 32, 44, 56).index(g["depth"])
        if g["kind"] == "plain":
            return [0.4, 0.5, 0.6 - plain_slope * depth_rank], "done"
        return [0.4, 0.5, 0.6 + 0.02 * depth_rank], "done"

    plain, res, removed = degradation.analyze(
        _results(degradation.EXPERIMENT, curves, tmp_path), tmp_path
    )
    assert plain.verdict == expected and res.verdict == "supported"
    # the skips remove a degradation only where the plain nets degrade
    assert removed.verdict == ("supported" if expected == "supported" else INCONCLUSIVE)


@pytest.mark.parametrize(
    ("resnet_drop", "expected"),
    [
        (0.0, "supported"),  # plain56 15 points worse, resnet56 as good as resnet20
        (0.01, "supported"),  # resnet56 1 point worse: within the 2.1-point noise
        (0.12, "not supported"),  # the ResNets degrade too
    ],
)
def test_skip_connections_remove_the_degradation(tmp_path, resnet_drop, expected):
    def curves(g):
        drop = (0.15 if g["kind"] == "plain" else resnet_drop) if g["depth"] == 56 else 0.0
        return [0.4, 0.5, 0.7 - drop], "done"

    results = _results(degradation.EXPERIMENT, curves, tmp_path)
    *_, removed = degradation.analyze(results, tmp_path)
    assert removed.verdict == expected
    assert "plain (plain56 - plain20) +15.0 points" in removed.evidence


def test_degradation_on_narrow_nets_says_so(tmp_path):
    def curves(g, seed):  # annealed runs: plain56 behind by 10 points, resnet56 ahead by 3
        sign = -1 if g["kind"] == "plain" else 1
        acc = 0.8 + (sign * (0.1 if sign < 0 else 0.03) if g["depth"] == 56 else 0) + seed / 500
        return [0.5, 0.7, acc], "done", [1.5, 1.0, 0.9]

    results = _results(degradation.EXPERIMENT, curves, tmp_path, seeds=2, budget="hour")
    for run in results.runs:  # a cosine schedule run down to nothing: settled
        for row, lr in zip(run.record.metrics, (0.1, 0.05, 0.001), strict=True):
            row["lr"] = lr
    plain, res, removed = degradation.analyze(results, tmp_path)
    assert plain.verdict == res.verdict == removed.verdict == "supported"
    assert "plain56_w8 vs plain20_w8: 10.0 points higher" in plain.evidence
    assert "narrow twins (8/16/32 channels" in res.evidence


@pytest.mark.parametrize(
    ("pre", "expected"),
    [(0.80, "supported"), (0.795, "supported"), (0.75, "not supported")],
)
def test_preactivation_is_judged_at_least_as_well(tmp_path, pre, expected):
    """Ahead, or behind by less than the noise (about 1 point here), supports "at least as well";
    only a decided loss refutes it. BN after the ReLU stays an ordinary "better" claim."""

    def curves(g, seed):
        acc = {"pre-activation": pre, "post-activation": 0.80, "relu-before-bn": 0.80}
        return [0.5, 0.7, acc[g["variant"]] + (0.002 if seed else -0.002)], "done"

    results = _results(placement.EXPERIMENT, curves, tmp_path, seeds=2, budget="hour")
    pre_post, relu = placement.analyze(results, tmp_path)
    assert pre_post.verdict == expected
    assert "unless pre-activation ends more than the noise below" in pre_post.evidence
    assert relu.verdict == INCONCLUSIVE and "below the 1-point floor" in relu.evidence


def test_batchnorm_names_missing_values_in_words(tmp_path):
    def curves(g):
        if g["norm"] == "none":
            return [0.1, 0.1, 0.1], "diverged"
        return [0.25, 0.35, 0.45], "done"

    sections = batchnorm.analyze(_results(batchnorm.EXPERIMENT, curves, tmp_path), tmp_path)
    assert "without never" in sections[0].evidence
    assert "with BN 1, without none" in sections[1].evidence and "None" not in sections[1].evidence


@pytest.mark.parametrize(
    ("momentum_acc", "expected"), [(0.60, "supported"), (0.40, "inconclusive at this budget")]
)
def test_optimizers_picks_best_lr_on_validation_and_flags_sweep_edges(
    tmp_path, momentum_acc, expected
):
    def curves(g):
        name, lr = g["optimizer"], g["lr"]
        lrs = optimizers.OPTIMIZERS[name][1]
        if name == "sgd-momentum":  # peaks in the middle of its sweep
            return [0.1, 0.2, momentum_acc if lr == lrs[1] else 0.3], "done"
        return [0.1, 0.2, 0.3 + 0.05 * lrs.index(lr)], "done"  # best at the sweep's top edge

    results = _results(optimizers.EXPERIMENT, curves, tmp_path)
    (section,) = optimizers.analyze(results, tmp_path)
    assert section.verdict == expected
    rows = {row[0]: row for row in section.rows}
    assert rows["sgd-momentum"][1] == "0.1" and rows["sgd"][1] == "0.3 (edge)"
    edges = "sgd (top), nesterov (top), adam (top), adamw (top), rmsprop (top)"
    assert f"best lr of {edges} lies at an edge" in section.evidence
    # Plain SGD peaks at the top of its sweep and momentum SGD inside it.
    assert "move the gap towards plain SGD: its best lr, 0.3, is the largest" in section.evidence
    if momentum_acc == 0.60:  # 20 points ahead of every other
        assert (
            "Best overall at this budget: sgd-momentum (60.0%), ahead of every other beyond "
            "the noise" in section.evidence
        )
    else:  # all end at 40%: no ranking
        assert (
            "sgd-momentum, nesterov, adam, adamw, rmsprop end within the noise" in section.evidence
        )
    assert all(f.is_file() for f in section.figures)


def test_optimizers_say_when_a_wider_sweep_could_only_widen_momentums_lead(tmp_path):
    def curves(g):  # momentum SGD best at the top of its sweep, every other in the middle
        lrs = optimizers.OPTIMIZERS[g["optimizer"]][1]
        if g["optimizer"] == "sgd-momentum":
            return [0.1, 0.2, 0.3 + 0.05 * lrs.index(g["lr"])], "done"
        return [0.1, 0.2, 0.4 if g["lr"] == lrs[1] else 0.3], "done"

    (section,) = optimizers.analyze(_results(optimizers.EXPERIMENT, curves, tmp_path), tmp_path)
    assert "best lr of sgd-momentum (top) lies at an edge" in section.evidence
    assert "move the gap towards momentum SGD: its best lr, 0.3, is the largest" in section.evidence


def test_optimizers_rank_only_those_with_a_final_accuracy(tmp_path):
    def curves(g):  # plain SGD has no final accuracy (NaN); Adam leads the rest by 20 points
        if g["optimizer"] == "sgd":
            return [float("nan")] * 3, "diverged"
        return [0.2, 0.3, 0.6 if g["optimizer"] == "adam" else 0.4], "done"

    (section,) = optimizers.analyze(_results(optimizers.EXPERIMENT, curves, tmp_path), tmp_path)
    assert "Best overall at this budget: adam (60.0%), ahead of every other" in section.evidence
    assert "No final accuracy for sgd." in section.evidence


def test_optimizers_are_not_compared_before_their_runs_settle(tmp_path):
    def curves(g):  # momentum far ahead, but every loss still falling 20% an epoch
        accs = [0.3, 0.5, 0.7] if g["optimizer"] == "sgd-momentum" else [0.2, 0.3, 0.4]
        return accs, "done", [2.0, 1.6, 1.28]

    (section,) = optimizers.analyze(_results(optimizers.EXPERIMENT, curves, tmp_path), tmp_path)
    assert section.verdict == UNTRAINED
    assert "Not trained long enough to decide" in section.evidence


@pytest.mark.parametrize(
    ("a", "b", "seeds", "says"),
    [
        ((0.700, 0.0), (0.695, 0.0), 2, "below the 1-point floor"),
        ((0.700, 0.03), (0.680, 0.02), 2, "spread over seeds (3.0 points) exceeds the gap"),
        ((0.700, 0.0), (0.688, 0.0), 1, "falls below this gap with 3 seeds, about 1.5 h"),
    ],
)
def test_a_gap_within_the_noise_says_what_would_decide_it(a, b, seeds, says):
    # 1.96 sqrt((0.21 + 0.2147) / 5000) = 1.81 points with one seed: (1.81 / 1.2)^2 = 2.3 -> 3
    # seeds, 3 times the 0.5 h the runs took.
    assert compare(a, b, 5000, seeds)[0] == INCONCLUSIVE
    assert says in within_noise(a, b, 5000, seeds, hours=0.5)


@pytest.mark.parametrize(
    ("a", "b", "options", "expected"),
    [
        (0.6, 0.5, dict(margin=0.05), "supported"),
        (0.5, 0.6, dict(margin=0.05), "not supported"),
        (0.52, 0.5, dict(margin=0.05), "inconclusive at this budget"),  # inside the noise
        (40, 81, dict(lower_is_better=True), "supported"),  # fewer steps
        (81, 81, dict(lower_is_better=True), "inconclusive at this budget"),  # a tie
        (40, math.inf, dict(lower_is_better=True), "supported"),  # the other never got there
        (math.inf, math.inf, dict(lower_is_better=True), "inconclusive at this budget"),
        (float("nan"), 0.5, {}, "inconclusive at this budget"),  # not measured
        (None, 0.5, {}, "inconclusive at this budget"),
        (0.5, 0.6, dict(margin=1.0, refute_margin=0.0), "not supported"),  # asymmetric band
    ],
)
def test_one_rule_turns_numbers_into_a_verdict(a, b, options, expected):
    assert verdict(a, b, **options) == expected


def test_a_claim_of_parts_needs_every_part():
    s, n, i = "supported", "not supported", "inconclusive at this budget"
    assert all_of(s, s) == s and all_of(s, i) == i and all_of(i, n) == n and all_of(s, n) == n


@pytest.mark.parametrize(
    ("plain", "residual", "expected"),
    [
        (50.0, 0.5, "supported"),  # above 10 and 100x the residual net's
        (5.0, 0.1, "inconclusive at this budget"),  # 50x the residual's, but not above 10
        (50.0, 10.0, "inconclusive at this budget"),  # above 10, only 5x the residual's
        (0.5, 1.0, "not supported"),  # below the residual net's
    ],
)
def test_gradient_explosion_verdict(plain, residual, expected):
    def init(ratio):  # first/last conv gradient norms giving this ratio, and that ratio
        return {"init": [{"grad_norm": ratio}, {"grad_norm": 1.0}], "ratios": [ratio]}

    stats = {("plain", "batchnorm", 56): init(plain), ("resnet", "batchnorm", 56): init(residual)}
    assert gradients._explosion(stats, 56).verdict == expected


def test_gradient_verdicts_take_the_geometric_mean_over_initializations():
    """One initialization of 3 (first/last 5) would leave the claim open; the geometric mean
    of 5, 50 and 500 (50) decides it, and the evidence gives the range."""
    stats = {
        ("plain", "batchnorm", 56): {"init": [], "ratios": [5.0, 50.0, 500.0]},
        ("resnet", "batchnorm", 56): {"init": [], "ratios": [1.0, 2.0, 0.5]},
    }
    section = gradients._explosion(stats, 56)
    assert section.verdict == "supported"
    assert "plain with BN 50 (5-500), residual with BN 1 (0.5-2)" in section.evidence
