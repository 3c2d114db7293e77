"""Verdicts are computed from the runs' numbers: the same code says supported or not."""

import math
from pathlib import Path

import pytest

from reslab.experiments import BUDGETS, batchnorm, degradation, gradients, optimizers
from reslab.experiments.analysis import all_of, verdict
from reslab.experiments.runner import ExperimentResults, RunResult
from reslab.report.runs import RunRecord


def _record(name, accs, step=27):
    rows = [
        {
            "epoch": i + 1,
            "step": step * (i + 1),
            "train_loss": 1.0,
            "train_acc": a,
            "val_loss": 1.0,
            "val_acc": a,
            "lr": 0.1,
            "epoch_time_s": 1,
            "images_per_s": 3500,
        }
        for i, a in enumerate(accs)
    ]
    return RunRecord(Path(name), {"dataset": "cifar10-sample"}, rows, {"test_acc": accs[-1]})


def _results(exp, curves, tmp_path):
    runs = []
    for spec in exp.grid(BUDGETS["quick"]):
        accs, status = curves(spec.group)
        runs.append(RunResult(spec, 0, _record(spec.name, accs), status))
    return ExperimentResults(exp, BUDGETS["quick"], tmp_path, runs)


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
    assert list(verdicts.values()) == ["not supported"] * 3


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
            return [0.5, 0.6 - plain_slope * depth_rank], "done"
        return [0.5, 0.6 + 0.02 * depth_rank], "done"

    plain, res = degradation.analyze(_results(degradation.EXPERIMENT, curves, tmp_path), tmp_path)
    assert plain.verdict == expected and res.verdict == "supported"


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
            return [0.2, momentum_acc if lr == lrs[1] else 0.3], "done"
        return [0.2, 0.3 + 0.05 * lrs.index(lr)], "done"  # best at the sweep's top edge

    results = _results(optimizers.EXPERIMENT, curves, tmp_path)
    (section,) = optimizers.analyze(results, tmp_path)
    assert section.verdict == expected
    rows = {row[0]: row for row in section.rows}
    assert rows["sgd-momentum"][1] == "0.1" and rows["sgd"][1] == "0.3 (edge)"
    assert "best lr of sgd, nesterov, adam, adamw, rmsprop lies at the edge" in section.evidence
    assert all(f.is_file() for f in section.figures)


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
    def init(ratio):  # first/last conv gradient norms giving this ratio
        return {"init": [{"grad_norm": ratio}, {"grad_norm": 1.0}]}

    stats = {("plain", "batchnorm", 56): init(plain), ("resnet", "batchnorm", 56): init(residual)}
    assert gradients._explosion(stats, 56).verdict == expected
