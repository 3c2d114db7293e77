"""The CUDA path, as a user runs it: training in each precision, torch.compile, an exact resume
with --deterministic, SyncBatchNorm under torchrun, and a CUDA-trained run evaluated and exported
on the CPU; and the fp16 step with its gradient scaler, in process.

Every test here is marked `gpu` (skipped without CUDA). The whole file must run in about a
minute and a half, so the training commands are started together, each in a process of its
own, as the module's first test needs them (the `runs` fixture); each test then waits for its
own command and checks what it left. Each run is TINY_TRAIN-sized: a few steps of the shipped
sample.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from reslab.infer import load
from reslab.models.export import Normalized
from reslab.run.checkpoint import load_checkpoint
from reslab.run.config import read_toml
from tests.conftest import cli_env, start_cli, tiny_flags, tiny_settings

pytestmark = pytest.mark.gpu

DEVICE = "cuda"
STEPS = 5  # optimizer steps of each training run: inside the first epoch (60 steps of 64)
TRAIN = tiny_flags(max_steps=STEPS, batch_size=64, device=DEVICE)
WAIT_S = 300  # per command; a command still running then has hung
BUDGET_S = 20  # the time-budgeted run's whole command

# The CPU test test_interrupted_and_resumed_run_is_bit_identical (tests/train/test_engine.py)
# on CUDA, in a process of its own: CUBLAS_WORKSPACE_CONFIG is read when cuBLAS starts, so only a
# fresh process shows whether reslab sets it in time. Prints one line, RESULT {json}.
RESUME_SCRIPT = """
import json, os, sys, warnings
from pathlib import Path

import torch

from reslab.train import build_config, fit, resume
from reslab.run.checkpoint import load_checkpoint
from reslab.train.stop import StopRequested

out, config = Path(sys.argv[1]), build_config(json.loads(sys.argv[2]))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    straight = fit(config, out / "straight", quiet=True)
    try:
        fit(config, out / "split", quiet=True, should_stop=lambda step: step == 9)
        stopped = False
    except StopRequested:
        stopped = True
    saved_at = load_checkpoint(out / "split" / "checkpoints" / "last.pt")["position"]["step"]
    resumed = resume(out / "split", quiet=True)
a, b = straight.model.state_dict(), resumed.model.state_dict()
result = {
    "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    "stopped": stopped,
    "saved_at": saved_at,
    "same_keys": list(a) == list(b),
    "different": [k for k in a if k in b and not torch.equal(a[k], b[k])],
    "devices": sorted({str(t.device) for t in a.values()}),
    "warnings": sorted({str(w.message).strip().splitlines()[0] for w in caught}),
}
print("RESULT " + json.dumps(result))
"""
# The settings of that CPU test (its ENGINE, cut at 24 steps, with an EMA).
RESUME = tiny_settings(
    epochs=2,
    max_steps=24,
    batch_size=64,
    val_split=200,
    lr=0.05,
    schedule="cosine",
    check_every=7,
    deterministic=True,
    ema=0.9,
    device=DEVICE,
)
RESUME_RUNS = ("straight", "split")  # the run directories the script writes
PRECISIONS = ["fp32", "bf16", "fp16"]


class Runs:
    """Commands running side by side, each in a session of its own with its output in files."""

    def __init__(self, folder: Path, data_dir: Path):
        self.folder, self.data_dir = folder, data_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[object], extra_env: dict[str, str] | None = None):
        env = cli_env(self.data_dir, **(extra_env or {}))
        # Whether the run is deterministic must be reslab's doing, not this environment's.
        env.pop("CUBLAS_WORKSPACE_CONFIG", None)
        with self._log(name, "out").open("w") as out, self._log(name, "err").open("w") as err:
            self.procs[name] = subprocess.Popen(
                [sys.executable, *map(str, argv)],
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,  # so that stop() can end torchrun's workers too
            )

    def train(self, name: str, *flags: object, extra_env: dict[str, str] | None = None):
        """`reslab train` of TRAIN and `flags` into the run directory self.run(name)."""
        argv = ["-m", "reslab", "train", *TRAIN, *flags, "--out", self.run(name)]
        self.start(name, argv, extra_env)

    def run(self, name: str) -> Path:
        return self.folder / name

    def result(self, name: str) -> subprocess.CompletedProcess[str]:
        """The command's exit status and output, once it has ended."""
        proc = self.procs[name]
        try:
            proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            err = self._text(name, "err")[-4000:]
            pytest.fail(f"{name} was still running after {WAIT_S} s; stderr:\n{err}")
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, self._text(name, "out"), self._text(name, "err")
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                self._kill(proc)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the session this command leads
        proc.wait()

    def _log(self, name: str, stream: str) -> Path:
        return self.folder / f"{name}.{stream}"

    def _text(self, name: str, stream: str) -> str:
        return self._log(name, stream).read_text(errors="replace")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    runs = Runs(tmp_path_factory.mktemp("cuda"), data_dir)
    # The longest first: torch.compile's first call compiles forward and backward with Inductor.
    # The fast recipe's advice for a GPU (--precision bf16 --compile) on the small ResNet, whose
    # fewer layers compile faster than ResNet-20's. Inductor writes into a cache folder of its own
    # here, to show that it compiled.
    runs.train(
        "compile",
        "--compile", "--precision", "bf16", "--channels-last", "--model", "small_resnet",
        extra_env={"TORCHINDUCTOR_CACHE_DIR": str(runs.folder / "inductor")},
    )  # fmt: skip
    settings = json.dumps({**RESUME, "data_dir": str(data_dir)})
    runs.start("resume", ["-c", RESUME_SCRIPT, runs.run("resume"), settings])
    for precision in PRECISIONS:
        runs.train(precision, "--precision", precision, "--channels-last")
    runs.train("sync-bn", "--sync-bn", "--nproc", 1)
    # A budget alone sets the length (no epochs, no max_steps): auto precision, 20 s in all.
    runs.start("budget", ["-m", "reslab", "train", *tiny_flags(max_steps=0, epochs=0,
               device=DEVICE, time_budget=BUDGET_S, precision="auto"), "--out",
               runs.run("budget")])  # fmt: skip
    yield runs
    runs.stop()


def _tail(r: subprocess.CompletedProcess[str]) -> str:
    return f"exit {r.returncode}\n--- stdout\n{r.stdout[-2000:]}\n--- stderr\n{r.stderr[-4000:]}"


def _finite(*values: object) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _finished(run: Path, r: subprocess.CompletedProcess[str]) -> dict:
    """The summary of a run that ended well on DEVICE after STEPS steps, every number finite."""
    assert r.returncode == 0, _tail(r)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["device"].split(":")[0] == DEVICE, summary
    assert summary["steps"] == STEPS, summary
    assert _finite(summary["test_loss"], summary["test_acc"], summary["test_top5"]), summary
    assert 0 <= summary["test_acc"] <= summary["test_top5"] <= 1, summary
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [STEPS], rows
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert _finite(rows[0][key]), rows
    return summary


@pytest.mark.parametrize("precision", PRECISIONS)
def test_training_on_cuda_in_each_precision(runs, precision):
    run, r = runs.run(precision), runs.result(precision)
    _finished(run, r)
    assert f"; {DEVICE}, {precision}; " in r.stdout  # the header line names where it trained
    config = read_toml(run / "config.toml")
    assert (config["device"], config["precision"], config["channels_last"]) == (
        DEVICE,
        precision,
        True,
    )
    # Saved from the GPU, read back onto the CPU (map_location) with everything a resume needs.
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["position"]["step"] == STEPS
    assert {t.device.type for t in state["model"].values()} == {"cpu"}
    assert "cuda" in state["rng"]  # the CUDA generators' state, for an exact resume
    scaler = state["scaler"]
    if precision == "fp16":  # the GradScaler's state, so a resume scales as the run did
        assert _finite(scaler["scale"]) and 0 < scaler["scale"] <= 2.0**16, scaler
        assert "_growth_tracker" in scaler, scaler
    else:  # a disabled scaler has no state
        assert scaler == {}, scaler
    loaded = load(run)  # the final weights, on the CPU
    with torch.no_grad():
        assert torch.isfinite(loaded.model(torch.zeros(2, 3, 32, 32))).all()


def test_cuda_trained_run_evaluates_and_exports_on_the_cpu(runs, tmp_path, data_dir):
    run, r = runs.run("fp32"), runs.result("fp32")
    summary = _finished(run, r)
    st, onnx = tmp_path / "m.safetensors", tmp_path / "m.onnx"
    commands = {
        "eval": ["eval", run, "--device", "cpu", "--out", tmp_path / "eval"],
        "safetensors": ["export", run, "--format", "safetensors", "--out", st],
        "onnx": ["export", run, "--format", "onnx", "--out", onnx],
    }
    procs = {name: start_cli(*argv, data_dir=data_dir) for name, argv in commands.items()}
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=WAIT_S)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    for name in ("eval", "safetensors"):
        assert done[name].returncode == 0, f"{name}: {_tail(done[name])}"

    # The test split on the CPU scores what the run scored on the GPU. fp32, but cuDNN's
    # convolutions use TF32 there: logits differ slightly (cutting every convolution's weights
    # and inputs to TF32 on the CPU changed no prediction and the loss by 0.3%).
    ev = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert ev["split"] == "test" and ev["count"] > 0, ev
    assert abs(ev["top1"] - summary["test_acc"]) <= 0.005, (ev["top1"], summary)
    assert ev["loss"] == pytest.approx(summary["test_loss"], rel=2e-2), (ev["loss"], summary)

    exported, saved = load_file(str(st)), load_file(str(run / "model.safetensors"))
    assert exported.keys() == saved.keys()
    assert all(torch.equal(exported[k], saved[k]) for k in saved)

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")  # `reslab export --format onnx` writes its metadata with it
    assert done["onnx"].returncode == 0, f"onnx: {_tail(done['onnx'])}"
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # in [0, 1]
    (got,) = session.run(None, {"images": images.numpy()})
    loaded = load(run)
    with torch.no_grad():
        want = Normalized(loaded.model, loaded.data["mean"], loaded.data["std"])(images)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


def test_deterministic_resume_on_cuda_is_bit_identical(runs):
    r = runs.result("resume")
    assert r.returncode == 0, _tail(r)
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, _tail(r)
    result = json.loads(lines[0].removeprefix("RESULT "))
    warned = "\n".join(result["warnings"])
    # The test's environment has no CUBLAS_WORKSPACE_CONFIG: reslab's seed_everything set it.
    assert result["cublas_workspace_config"] in (":4096:8", ":16:8"), result
    assert "CUBLAS_WORKSPACE_CONFIG" not in warned, warned
    assert result["stopped"] and result["saved_at"] == 9, result
    assert {d.split(":")[0] for d in result["devices"]} == {DEVICE}, result
    assert result["same_keys"] and result["different"] == [], f"{result}\n{warned}"
    out = runs.run("resume")
    straight, split = (json.loads((out / k / "summary.json").read_text()) for k in RESUME_RUNS)
    assert split["test_acc"] == straight["test_acc"] and split["steps"] == straight["steps"] == 24
    clock = ("epoch_time_s", "images_per_s")  # wall-clock fields differ between any two runs
    rows = {
        k: [
            {f: v for f, v in json.loads(line).items() if f not in clock}
            for line in (out / k / "metrics.jsonl").read_text().splitlines()
        ]
        for k in RESUME_RUNS
    }
    assert [row["step"] for row in rows["straight"]] == [24]
    assert rows["split"] == rows["straight"]


def test_sync_batchnorm_under_torchrun_on_cuda(runs):
    """--nproc 1: torchrun with one worker. (WORLD_SIZE=1 joins no process group, so
    SyncBatchNorm normalizes with the batch's own statistics, as BatchNorm does.)"""
    run, r = runs.run("sync-bn"), runs.result("sync-bn")
    _finished(run, r)
    assert read_toml(run / "config.toml")["sync_bn"] is True
    loaded = load(run)  # SyncBatchNorm's weights load into the model's plain BatchNorm
    with torch.no_grad():
        assert torch.isfinite(loaded.model(torch.zeros(2, 3, 32, 32))).all()


@pytest.mark.parametrize("optimizer", ["sgd", "muon"])  # muon: reslab's own step, unscaled
def test_fp16_train_step_with_grad_scaler_on_cuda(tiny_config, optimizer):
    from reslab.train.engine import train_step
    from reslab.train.setup import build

    fp16 = dict(device=DEVICE, precision="fp16", channels_last=True, batch_size=64)
    s = build(tiny_config(**fp16, optimizer=optimizer))
    assert s.scaler.is_enabled() and s.device.type == DEVICE
    before = {name: p.detach().clone() for name, p in s.model.named_parameters()}
    # A step whose scaled gradients overflow is skipped (and the scale halved): allow a few.
    changed = []
    for _, (x, y) in zip(range(4), s.train_loader.iter_epoch(0), strict=False):
        assert x.device.type == DEVICE and x.is_contiguous(memory_format=torch.channels_last)
        loss, correct = train_step(s, x, y)
        assert loss.device.type == DEVICE and loss.dtype == torch.float32
        assert torch.isfinite(loss) and 0 <= int(correct) <= len(y)
        scale = s.scaler.get_scale()
        assert _finite(scale) and 0 < scale <= 2.0**16, scale
        changed = [n for n, p in s.model.named_parameters() if not torch.equal(p, before[n])]
        if changed:
            break
    assert changed, f"no step changed the weights (scale {s.scaler.get_scale()})"
    assert all(p.dtype == torch.float32 for p in s.model.parameters())  # autocast, not .half()
    assert all(torch.isfinite(p).all() for p in s.model.parameters())


def test_compile_on_cuda_compiles_rather_than_falling_back(runs):
    run, r = runs.run("compile"), runs.result("compile")
    _finished(run, r)
    # CompiledOrEager warns this when compilation failed and the run went on eagerly.
    assert "torch.compile failed" not in r.stdout + r.stderr, _tail(r)
    inductor = runs.folder / "inductor"
    assert inductor.is_dir() and any(p.is_file() for p in inductor.rglob("*")), _tail(r)


def test_a_time_budget_sizes_a_cuda_run_and_picks_bf16(runs):
    run, r = runs.run("budget"), runs.result("budget")
    assert r.returncode == 0, _tail(r)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_by"] == "time budget" and summary["precision"] == "bf16", summary
    assert summary["steps"] > STEPS and summary["budget_spent_s"] <= BUDGET_S * 1.02, summary
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["lr"] < 0.01 * max(row["lr"] for row in rows)  # landed at the schedule's end
