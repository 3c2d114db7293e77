"""The benchmark scripts run as a user runs them (subprocess, the shipped sample) and write the
JSON they promise. Only their plumbing is checked here: speed is measured by running them, never
asserted in a test."""

import argparse
import importlib.util
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
    stdout = run_script(
        "bench_time_budget.py",
        *("--budgets", "20s", "--cold", "20s", "--baseline-model", "resnet20"),
        *("--seeds", 2, "--precisions", "fp32", "bf16"),
        *("--out", tmp_path / "runs", "--plot", figure, "--json", path),
        *("--", "--val-split", 500),
        tmp_path=tmp_path,
        data_dir=data_dir,
    )
    result = json.loads(path.read_text())
    *warm, cold = result["reslab"]
    assert [(r["precision"], r["seed"], r["cache"]) for r in warm] == [
        ("fp32", 0, "warm"),
        ("fp32", 1, "warm"),
        ("bf16", 0, "warm"),
        ("bf16", 1, "warm"),
    ]
    assert (cold["cache"], cold["precision"], cold["seed"]) == ("cold", "fp32", 0)
    assert "--out " + str(tmp_path / "runs" / "reslab-fp32-20s-cold") in cold["command"]
    for r in result["reslab"]:
        assert r["stopped_by"] == "time budget"
        assert r["wall_s"] > 0 and 0 <= r["test_acc"] <= 1 and r["val_acc"]
        assert r["command"].startswith("reslab train --time-budget 20 --recipe cpu-budget")
        assert f"--precision {r['precision']}" in r["command"]
    fp32, bf16 = result["means"]
    assert (fp32["precision"], fp32["seeds"]) == ("fp32", [0, 1])
    assert fp32["mean_test_acc"] == pytest.approx((warm[0]["test_acc"] + warm[1]["test_acc"]) / 2)
    (diff,) = result["paired"]
    assert diff["difference"] == "bf16 - fp32" and diff["seeds"] == [0, 1]
    (base,) = result["baseline"]
    assert base["model"] == "resnet20" and base["train_wall_s"] >= 20 and base["steps"] > 0
    ratios = {r["precision"]: r["ratio"] for r in result["error_ratio"]}
    assert ratios["fp32"] == round((1 - fp32["mean_test_acc"]) / (1 - base["test_acc"]), 3)
    assert "| 20 s | bf16 - fp32 | 2 |" in stdout
    assert figure.stat().st_size > 1000


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_time_budget_means_and_paired_differences_by_seed():
    """The summary of the time-budget benchmark, by hand: means with their t interval, the
    second precision against the first paired by seed, the cold run left out."""
    bench = _bench("bench_time_budget")

    def row(precision, seed, acc, cache="warm", arm=None):
        return dict(
            precision=precision, arm=arm or precision, budget_s=600.0, seed=seed, test_acc=acc,
            cache=cache, wall_s=590.0, epochs=14, overshoot_pct=-1.7,
        )  # fmt: skip

    results = [
        row("fp32", 0, 0.86),
        row("fp32", 1, 0.87),
        row("fp32", 2, 0.88),
        row("bf16", 0, 0.87),
        row("bf16", 1, 0.89),
        row("bf16", 3, 0.99),  # no fp32 twin: not paired
        row("fp32", 0, 0.10, cache="cold"),
    ]
    fp32, bf16 = bench.summarize(results)
    assert fp32["mean_test_acc"] == pytest.approx(0.87)
    # sd 0.01, se 0.01 / sqrt(3), t(0.975, 2) = 4.3027
    assert fp32["high"] - fp32["mean_test_acc"] == pytest.approx(4.3027 * 0.01 / 3**0.5, rel=1e-4)
    assert bf16["seeds"] == [0, 1, 3]
    (diff,) = bench.paired(results)
    # differences 0.01 and 0.02: mean 0.015, sd 0.00707, se 0.005, t(0.975, 1) = 12.706
    assert diff["seeds"] == [0, 1] and diff["mean"] == pytest.approx(0.015)
    assert diff["low"] == pytest.approx(0.015 - 12.706 * 0.005, rel=1e-3)
    # Asked as auto and as bf16 on a machine where auto picks bf16: two arms, not one.
    both = [row("bf16", 0, 0.87, arm="auto"), row("bf16", 0, 0.88), row("bf16", 1, 0.89)]
    auto, bf16 = bench.summarize(both)
    assert (auto["precision"], auto["resolved"], auto["seeds"]) == ("auto", ["bf16"], [0])
    assert bf16["seeds"] == [0, 1]
    (diff,) = bench.paired(both)
    assert diff["difference"] == "bf16 - auto" and diff["mean"] == pytest.approx(0.01)
    assert "| 600 s | auto (bf16) | 0 |" in bench.table(both, [])


def test_bench_time_budget_combines_files_a_later_point_replacing_an_earlier(tmp_path):
    bench = _bench("bench_time_budget")
    header = dict(machine={"device": "cpu"}, recipe="cpu-budget", data="folder:D",
                  baseline_setup={"model": "resnet18_cifar"})  # fmt: skip

    def run(budget, seed, acc, cache="warm"):
        return dict(arm="fp32", precision="fp32", budget_s=budget, seed=seed, test_acc=acc,
                    cache=cache, wall_s=budget, epochs=3, overshoot_pct=-1.0)  # fmt: skip

    first, again = tmp_path / "first.json", tmp_path / "again.json"
    first.write_text(json.dumps({**header, "baseline": [{"budget_s": 600.0, "test_acc": 0.3}],
        "reslab": [run(120.0, 0, 0.5), run(600.0, 0, 0.8), run(600.0, 1, 0.9),
                   run(120.0, 0, 0.4, "cold")]}))  # fmt: skip
    again.write_text(json.dumps({**header, "baseline": [],
        "reslab": [run(120.0, 0, 0.7), run(600.0, 0, 0.88)]}))  # fmt: skip
    _, runs, baseline, replaced = bench.combine([str(first), str(again)])
    got = [(r["budget_s"], r["seed"], r["cache"], r["test_acc"], Path(r["file"]).name)
           for r in runs]  # fmt: skip
    assert got == [
        (120.0, 0, "warm", 0.7, "again.json"),
        (600.0, 0, "warm", 0.88, "again.json"),
        (600.0, 1, "warm", 0.9, "first.json"),
        (120.0, 0, "cold", 0.4, "first.json"),
    ]
    assert [r["test_acc"] for r in replaced] == [0.5, 0.8]
    assert [b["test_acc"] for b in baseline] == [0.3]  # kept: the later file has none
    (ten,) = [m for m in bench.summarize(runs) if m["budget_s"] == 600.0]
    assert ten["mean_test_acc"] == pytest.approx(0.89)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**header, "machine": {"device": "cuda"}, "baseline": [],
                                 "reslab": []}))  # fmt: skip
    with pytest.raises(SystemExit, match="another machine"):
        bench.combine([str(first), str(other)])
    (tmp_path / "notes.json").write_text('{"runs": []}')
    for bad in ("missing.json", "notes.json"):
        with pytest.raises(SystemExit, match="not a results file"):
            bench.combine([str(tmp_path / bad)])


def test_bench_time_budget_grid_seeds_only_where_asked():
    bench = _bench("bench_time_budget")
    args = argparse.Namespace(seeds=3, seeds_at=["10m"], precisions=["fp32", "bf16"])
    runs = bench.grid(args, [120.0, 600.0])
    assert runs[:4] == [
        ("fp32", 120.0, 0),
        ("fp32", 600.0, 0),
        ("fp32", 600.0, 1),
        ("fp32", 600.0, 2),
    ]
    assert len(runs) == 8 and runs[4] == ("bf16", 120.0, 0)
    plain = argparse.Namespace(seeds=None, seeds_at=None, precisions=None)
    assert bench.grid(plain, [600.0]) == [(None, 600.0, None)]
    with pytest.raises(SystemExit, match="not among --budgets"):
        bench.grid(argparse.Namespace(seeds=2, seeds_at=["5m"], precisions=None), [600.0])


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
