"""Measurements taken as an experiment's runs train: when, on what, and read back after a
resume measured some steps twice."""

import json

import pytest

from reslab.experiments import Budget, Experiment, RunSpec, run_experiment
from reslab.experiments.probe import ProbeSpec, read_probes
from reslab.run.directory import RunDir

TINY = Budget(
    "tiny",
    "cifar10-sample",
    1,
    dict(batch_size=32, val_split=100, max_steps=4, threads=2, check_every=1),
    (20,),
    0.2,
    "a few steps",
)


# The session's data directory, where the sample is decoded once (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("reslab_data")


def batch_facts(model, x, y, config):
    """A measurement of what the probe is given (module level: a worker process takes it)."""
    return {"images": len(x), "labels": y[:8].tolist(), "training": model.training}


def test_a_probed_run_writes_a_row_when_due_and_a_spec_may_ask_for_more_seeds(tmp_path):
    probe = ProbeSpec(batch_facts, points=2, images=40)
    grid = [RunSpec("probed", dict(model="small_cnn"), probe=probe, seeds=2)]
    exp = Experiment("p", "p", "p", lambda budget: grid, lambda results, out: [])
    results = run_experiment(exp, TINY, tmp_path, seeds=1, log=lambda m: None)
    assert [r.record.name for r in results.runs] == ["probed-s0", "probed-s1"]
    rows = read_probes(tmp_path / "runs" / "probed-s0")
    assert [r["step"] for r in rows] == [0, 2, 4]  # the start, then every 4 // 2 steps
    assert all(r["images"] == 40 and r["training"] for r in rows)
    assert len(set(rows[0]["labels"])) > 1
    assert rows[0]["labels"] == rows[-1]["labels"]  # the same images every time
    other = read_probes(tmp_path / "runs" / "probed-s1")
    assert other[0]["labels"] != rows[0]["labels"]  # drawn by each seed, not class-ordered


def test_reading_back_keeps_the_last_row_of_each_step_and_skips_a_cut_line(tmp_path):
    lines = [{"step": 0, "v": 1}, {"step": 5, "v": 2}, {"step": 5, "v": 3}, {"step": 2, "v": 4}]
    text = "".join(json.dumps(r) + "\n" for r in lines) + '{"step": 9, "v"'
    RunDir(tmp_path).probes.write_text(text)
    assert read_probes(tmp_path) == [{"step": 0, "v": 1}, {"step": 2, "v": 4},
                                     {"step": 5, "v": 3}]  # fmt: skip
    assert read_probes(tmp_path / "none") == []
