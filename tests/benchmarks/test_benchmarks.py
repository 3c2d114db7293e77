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


@pytest.mark.slow
def test_bench_train_writes_every_figure(tmp_path, data_dir):
    path = tmp_path / "train.json"
    stdout = run_script(
        "bench_train.py",
        *("--steps", 2, "--warmup", 1, "--workers", 1, "--batch-sizes", 16, 32),
        *("--precision", "bf16", "--imagenet", "resnet18", "--imagenet-batch", 2, "--json", path),
        tmp_path=tmp_path,
        data_dir=data_dir,
    )
    result = json.loads(path.read_text())
    assert result["precision"] == "bf16" and result["machine"]["torch"]
    cifar, imagenet = result["results"][:2], result["results"][2:]
    assert [r["batch_size"] for r in cifar] == [16, 32]
    assert [(r["model"], r["input"], r["compiled"]) for r in imagenet] == [("resnet18", 224, False)]
    assert imagenet[0]["reslab_images_per_s"] > 0 and imagenet[0]["ceiling_fraction"] > 0
    for r in cifar:
        assert r["baseline_images_per_s"] > 0 and r["reslab_images_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["reslab_images_per_s"] / r["baseline_images_per_s"])
        assert r["train_gflop_per_step"] > 0 and r["ceiling_fraction"] > 0
        epoch_images = 4000 // r["batch_size"] * r["batch_size"]  # the sample, no validation
        assert r["reslab_epoch_s"] == pytest.approx(epoch_images / r["reslab_images_per_s"])
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
def test_bench_time_budget_runs_the_cli_and_the_baseline(tmp_path, data_dir):
    path, figure = tmp_path / "budget.json", tmp_path / "curve.png"
    run_script(
        "bench_time_budget.py",
        *("--budgets", "25s", "--cold", "25s", "--baseline-model", "resnet20"),
        *("--out", tmp_path / "runs", "--plot", figure, "--json", path),
        *("--", "--val-split", 500),
        tmp_path=tmp_path,
        data_dir=data_dir,
    )
    result = json.loads(path.read_text())
    warm, cold = result["reslab"]
    assert (warm["cache"], cold["cache"]) == ("warm", "cold")
    for r in (warm, cold):
        assert r["stopped_by"] == "time budget" and r["precision"] == "fp32"
        assert r["wall_s"] > 0 and 0 <= r["test_acc"] <= 1 and r["val_acc"]
        assert r["command"].startswith("reslab train --time-budget 25 --recipe cpu-budget")
    (base,) = result["baseline"]
    assert base["model"] == "resnet20" and base["train_wall_s"] >= 25 and base["steps"] > 0
    assert result["error_ratio"]["25"] == round((1 - warm["test_acc"]) / (1 - base["test_acc"]), 3)
    assert figure.stat().st_size > 1000


def _run(test_acc: float, epoch_times: list[float], command_s: float = 30.0) -> dict:
    metrics = [{"epoch": i + 1, "epoch_time_s": t} for i, t in enumerate(epoch_times)]
    return {
        "summary": json.dumps({"test_acc": test_acc}),
        "metrics": metrics,
        "command_s": command_s,
    }


def test_gpu_report_sums_up_a_results_folder(tmp_path):
    """benchmarks/gpu_report.py on a folder as benchmarks/gpu_suite.sh leaves it: warm-up taken
    out of the first epoch, seed spread, plateau gap, time to 90%, the ablations."""
    runs = {
        **{f"fast-s{s}": _run(0.88 + s / 1000, [3.0, 1.0, 1.0, 1.2]) for s in range(3)},
        "plateau-s0": _run(0.915, [3.0] + [1.0] * 15),
        "short-e2-s0": _run(0.80, [3.0, 1.0]),
        "short-e8-s0": _run(0.905, [3.0] + [1.0] * 7),
        "no-ema-s0": _run(0.87, [3.0, 1.0, 1.0, 1.0]),
        "no-ema-s1": _run(0.872, [3.0, 1.0, 1.0, 1.0]),
        "fp32-s0": _run(0.881, [3.5, 2.0, 2.0, 2.0]),
    }
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    out = run_python(BENCH / "gpu_report.py", tmp_path, "--json", tmp_path / "r.json")
    assert out.returncode == 0, out.stderr
    facts = json.loads((tmp_path / "r.json").read_text())
    s0 = facts["runs"]["fast-s0"]
    assert s0["warmup_s"] == pytest.approx(2.0)  # 3.0 less the median of 1.0, 1.0, 1.2
    assert s0["train_s_without_warmup"] == pytest.approx(4.2)
    assert facts["fast"]["test_acc"]["mean"] == pytest.approx(0.881)
    assert facts["plateau"]["gap_to_fast_mean"] == pytest.approx(0.034)
    assert facts["time_to_target"]["epochs"] == 8
    assert facts["time_to_target"]["train_s"] == pytest.approx(8.0)
    assert facts["ablation"]["no-ema"]["change"] == pytest.approx(0.871 - 0.8805)
    assert facts["speed"]["fp32"]["slower_by"] == pytest.approx(8.0 / 4.2)  # 9.5 less 1.5
    assert "| 0 | 88.00% | 4.20 | 2.0 | 1.000 | 30.0 |" in out.stdout
