"""Verdicts are computed from the runs' numbers: the same code says supported or not."""

from pathlib import Path

import pytest

from reslab.experiments import BUDGETS, batchnorm, degradation, optimizers
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
    for spec in exp.runs(BUDGETS["quick"]):
        accs, status = curves(spec.group)
        runs.append(RunResult(spec, 0, _record(spec.name, accs), status))
    return ExperimentResults(exp, BUDGETS["quick"], tmp_path, runs)


def test_batchnorm_supported_when_bn_is_faster_and_survives_high_lr(tmp_path):
    def curves(g):
        if g["norm"] == "none":
            return ([0.1, 0.1, 0.1], "diverged") if g["lr"] >= 0.5 else ([0.2, 0.25, 0.32], "done")
        return [0.25, 0.35, 0.45], "done"

    sections = batchnorm.analyze(_results(batchnorm.EXPERIMENT, curves, tmp_path), tmp_path)
    assert [s.verdict for s in sections] == ["supported"] * 3
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
    assert [s.verdict for s in sections] == ["not supported"] * 3


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
