"""Fault injection with real processes: SIGKILL at random moments (checkpoint writes included),
SIGTERM; plus flat memory and no leaked file handles over many epochs."""

import json
import os
import random
import signal
import subprocess
import time

import pytest
import torch

from reslab.run.checkpoint import load_checkpoint
from reslab.train import fit
from tests.conftest import start_cli, tiny_flags

# 300 training images in batches of 32: an epoch (and a checkpoint write) every ~1 s. Each test
# sets the length in epochs.
SMALL = {
    "val_split": 3700,
    "batch_size": 32,
    "max_steps": None,
    "threads": 1,
    "check_every": 1,
    "schedule": "cosine",
    "lr": 0.05,
}


def _start(args, data_dir):
    return start_cli("train", *args, data_dir=data_dir, stdout=subprocess.DEVNULL)


def _kill_and_resume(tmp_path, data_dir, kills: int, seed: int) -> int:
    """Train 6 epochs, SIGKILL it `kills` times at random moments, resuming after each; return
    how many kills landed while the run was unfinished."""
    run = tmp_path / "run"
    rng = random.Random(seed)
    last = run / "checkpoints" / "last.pt"
    proc = _start([*tiny_flags(**SMALL, epochs=6), "--out", run], data_dir)
    landed = 0
    for _ in range(kills):
        # Wait for training to be under way (a checkpoint exists), then kill at a random moment:
        # epochs, and so checkpoint writes, come every second or so.
        deadline = time.time() + 120
        while not last.is_file() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        position = load_checkpoint(last)["position"]  # never unreadable, whenever the kill landed
        if proc.returncode == -signal.SIGKILL and position["epoch"] < 6:
            landed += 1  # the kill, not a normal exit, ended a run with epochs left to train
        proc = _start(["--resume", run], data_dir)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 6
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 7))  # no epoch lost or doubled
    assert not [p for p in (run / "checkpoints").iterdir() if p.suffix == ".tmp"]
    return landed


@pytest.mark.slow
def test_sigkill_then_resume_always_finishes(tmp_path, data_dir):
    landed = _kill_and_resume(tmp_path, data_dir, kills=3, seed=0)
    assert landed >= 1, "no SIGKILL landed mid-run: the run finished before the first kill"


@pytest.mark.slow
def test_sigkill_many_times(tmp_path, data_dir):
    landed = _kill_and_resume(tmp_path, data_dir, kills=15, seed=1)
    assert landed >= 1, "no SIGKILL landed mid-run: the run finished before the first kill"


@pytest.mark.slow  # the handler SIGINT takes (test_train_cli.py), from a job scheduler
def test_sigterm_writes_a_checkpoint(tmp_path, data_dir):
    run = tmp_path / "run"
    proc = _start([*tiny_flags(**SMALL, epochs=50), "--out", run], data_dir)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last.pt").is_file() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "SIGTERM" in err and "--resume" in err
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["position"]["step"] > 0


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
def test_memory_stays_flat_and_no_file_handles_leak(tmp_path, tiny_config):
    torch.set_num_threads(2)
    config = tiny_config(
        val_split=3700,
        batch_size=50,
        epochs=16,
        max_steps=None,
        threads=None,
        schedule="constant",
        lr=0.02,
    )
    rss = {}

    def record(step):
        if step % 6 == 0:  # one epoch = 6 steps
            rss[step // 6] = _rss_mib()
        return False

    fds_before = len(os.listdir("/proc/self/fd"))
    fit(config, tmp_path / "run", quiet=True, should_stop=record)
    fds_after = len(os.listdir("/proc/self/fd"))
    growth = rss[16] - rss[4]
    assert growth < 25, f"RSS grew {growth:.1f} MiB from epoch 4 to 16: {rss}"
    assert fds_after <= fds_before + 2  # tensorboard's writer may keep none open after close
