"""The benchmark scripts run as a user runs them (subprocess, the shipped sample) and write the
JSON they promise. Only their plumbing is checked here: speed is measured by running them, never
asserted in a test."""

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import run_python

BENCH = Path(__file__).parents[2] / "benchmarks"


def run_script(name, *args, tmp_path, data_dir):
    out = run_python(BENCH / name, *args, data_dir=data_dir, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_bench_train_writes_every_figure(tmp_path, data_dir):
    path = tmp_path / "train.json"
    stdout = run_script(
        "bench_train.py",
        *("--steps", 1, "--repeats", 1, "--workers", 1, "--batch-sizes", 16, 32),
        *("--precision", "bf16", "--json", path),
        tmp_path=tmp_path,
        data_dir=data_dir,
    )
    result = json.loads(path.read_text())
    assert result["precision"] == "bf16" and result["machine"]["torch"]
    assert [r["batch_size"] for r in result["results"]] == [16, 32]
    for r in result["results"]:
        assert r["baseline_images_per_s"] > 0 and r["reslab_images_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["reslab_images_per_s"] / r["baseline_images_per_s"])
        assert r["train_gflop_per_step"] > 0 and r["ceiling_fraction"] > 0
        if sys.platform == "linux":  # peak memory is read from /proc
            assert r["baseline_peak_mib"] > 50 and r["reslab_peak_mib"] > 50
    assert "best batch for resnet20:" in stdout


def test_bench_loader_writes_both_pipelines(tmp_path, data_dir):
    path = tmp_path / "loader.json"
    run_script(
        "bench_loader.py",
        *("--repeats", 1, "--workers", 0, "--json", path),
        tmp_path=tmp_path,
        data_dir=data_dir,
    )
    result = json.loads(path.read_text())
    assert result["train_images"] == 4000 and result["workers"] == 0
    assert result["reslab_images_per_s"] > 0 and result["dataloader_images_per_s"] > 0
    assert result["ratio"] == pytest.approx(
        result["reslab_images_per_s"] / result["dataloader_images_per_s"]
    )


@pytest.mark.slow
def test_bench_time_budget_trains_and_reports(tmp_path, data_dir):
    path = tmp_path / "budget.json"
    run_script(
        "bench_time_budget.py",
        *("--budget-s", 20, "--batch-size", 64, "--json", path),
        tmp_path=tmp_path,
        data_dir=data_dir,
    )
    result = json.loads(path.read_text())
    assert result["epochs"] >= 1 and 0 <= result["test_acc"] <= 1
    assert result["train_time_s"] > 0
