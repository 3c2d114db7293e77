"""Fault injection with real processes: SIGKILL at random moments (checkpoint writes included),
SIGTERM; plus flat memory and no leaked file handles over many epochs."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from reslab.train import build_config, train
from reslab.train.checkpoint import load_checkpoint

# 300 training images in batches of 32: an epoch (and a checkpoint write) every ~1 s.
SMALL = [
    "--dataset",
    "cifar10-sample",
    "--val-split",
    "3700",
    "--batch-size",
    "32",
    "--threads",
    "1",
    "--check-every",
    "1",
    "--schedule",
    "cosine",
    "--lr",
    "0.05",
]


def _start(args, data_dir):
    return subprocess.Popen(
        [sys.executable, "-m", "reslab", "train", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RESLAB_DATA": str(data_dir)},
    )


def _kill_and_resume(tmp_path, kills: int, seed: int):
    data_dir, run = tmp_path / "data", tmp_path / "run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "reslab",
            "train",
            *SMALL,
            "--max-steps",
            "1",
            "--out",
            tmp_path / "warm",
        ],
        env={**os.environ, "RESLAB_DATA": str(data_dir)},
        capture_output=True,
        check=True,
    )  # decode the sample into the cache once
    rng = random.Random(seed)
    last = run / "checkpoints" / "last.pt"
    proc = _start([*SMALL, "--epochs", "6", "--out", run], data_dir)
    survived = 0
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
        load_checkpoint(last)  # never unreadable, whenever the kill landed
        survived += 1
        proc = _start(["--resume", run], data_dir)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 6
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 7))  # no epoch lost or doubled
    assert not [p for p in (run / "checkpoints").iterdir() if p.suffix == ".tmp"]
    return survived


def test_sigkill_then_resume_always_finishes(tmp_path):
    assert _kill_and_resume(tmp_path, kills=3, seed=0) >= 1


@pytest.mark.slow
def test_sigkill_many_times(tmp_path):
    _kill_and_resume(tmp_path, kills=15, seed=1)


def test_sigterm_writes_a_checkpoint(tmp_path):
    run = tmp_path / "run"
    proc = _start([*SMALL, "--epochs", "50", "--out", run], tmp_path / "data")
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
def test_memory_stays_flat_and_no_file_handles_leak(tmp_path, monkeypatch):
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path / "data"))
    torch.set_num_threads(2)
    config = build_config(
        {
            "dataset": "cifar10-sample",
            "val_split": 3700,
            "batch_size": 50,
            "epochs": 16,
            "schedule": "constant",
            "lr": 0.02,
        }
    )
    rss = {}

    def record(step):
        if step % 6 == 0:  # one epoch = 6 steps
            rss[step // 6] = _rss_mib()
        return False

    fds_before = len(os.listdir("/proc/self/fd"))
    train(config, tmp_path / "run", quiet=True, should_stop=record)
    fds_after = len(os.listdir("/proc/self/fd"))
    growth = rss[16] - rss[4]
    assert growth < 25, f"RSS grew {growth:.1f} MiB from epoch 4 to 16: {rss}"
    assert fds_after <= fds_before + 2  # tensorboard's writer may keep none open after close
