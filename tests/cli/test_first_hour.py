"""What a new user meets in the first hour, run as the user runs it: resuming whatever state a
run is in, checkpoints by the clock, the header and progress lines, file permissions, wrong
files given to `eval`."""

import json
import os
import signal
import time

from reslab.run.checkpoint import load_checkpoint
from tests.conftest import start_cli, tiny_flags


def test_resume_always_works_in_a_job_script(tmp_path, data_dir, cli):
    run = tmp_path / "run"
    flags = tiny_flags(max_steps=4)
    # A run killed before its first checkpoint: config.toml written, no checkpoint yet.
    proc = start_cli("train", *flags, "--out", run, data_dir=data_dir)
    while not (run / "config.toml").is_file() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "checkpoints" / "last.pt").exists()
    first = cli("train", "--resume", run)
    assert first.returncode == 0, first.stderr
    assert "has no checkpoint yet; starting its run over from step 0" in first.stdout
    assert json.loads((run / "summary.json").read_text())["steps"] == 4
    # Resumed again, finished: says so, exit 0, writes nothing.
    mtimes = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    again = cli("train", "--resume", run)
    assert again.returncode == 0, again.stderr
    assert "has already finished (test accuracy" in again.stdout and "nothing to do" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_a_sigkill_mid_epoch_loses_at_most_checkpoint_every(tmp_path, data_dir, cli):
    run = tmp_path / "run"
    # One long epoch (3,900 images in batches of 16: 243 steps) with a checkpoint every 0.3 s.
    flags = tiny_flags(max_steps=None, batch_size=16, check_every=1, threads=1)
    proc = start_cli("train", *flags, "--checkpoint-every", 0.3, "--out", run, data_dir=data_dir)
    last = run / "checkpoints" / "last.pt"
    step = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if last.is_file():
            try:
                step = load_checkpoint(last)["position"]["step"]
            except Exception:  # being replaced right now: read it again
                step = 0
            if 20 <= step < 200:
                break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(last)
    assert state["position"]["epoch"] == 0 and 20 <= state["position"]["batch"] < 243
    resumed = cli("train", "--resume", run)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step {state['position']['step']}" in resumed.stdout  # the header says where


def test_piped_output_starts_with_a_header_and_files_follow_the_umask(tmp_path, cli):
    run = tmp_path / "run"
    old = os.umask(0o022)
    try:
        r = cli("train", *tiny_flags(max_steps=3), "--out", run)
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0]
    assert header.startswith("small_cnn (924,074 params, norm batchnorm) on cifar10-sample: ")
    assert "3,900 train / 100 val / 1,000 test images; cpu, fp32;" in header
    for name in ("config.toml", "metrics.jsonl", "summary.json", "model.safetensors"):
        assert (run / name).stat().st_mode & 0o777 == 0o644, name
    assert (run / "checkpoints" / "last.pt").stat().st_mode & 0o777 == 0o644


def test_eval_of_a_run_config_file_says_what_the_file_is_not(tmp_path, cli):
    run = tmp_path / "run"
    assert cli("train", *tiny_flags(max_steps=2), "--out", run).returncode == 0
    r = cli("eval", run / "config.toml")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.rstrip().endswith(
        "is not a checkpoint: it was not written by torch.save; expected a run directory, "
        "a .pt checkpoint or a .safetensors weights file"
    )
    assert "objects other than tensors" not in r.stderr


def test_progress_counts_to_where_the_run_stops_and_says_when_it_ends(cli, monkeypatch):
    import reslab.train.progress as progress

    monkeypatch.setattr(progress, "PIPED_EVERY_S", 0.0)  # a line every step, here
    r = cli("train", *tiny_flags(max_steps=6, check_every=1), "--time-budget", "10m")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("epoch 1/1 step ")]
    assert lines and all(" step 6/" not in line or "/6 " in line for line in lines)
    assert "epoch 1/1 step 2/6 " in r.stdout  # the run's 6 steps, not the epoch's 121
    assert all("run ends in " in line and "; budget " in line for line in lines)
    assert "budget 9m" in lines[0] and " left" in lines[0]
    assert ", 1 epoch, 6 steps," in r.stdout.splitlines()[0]  # the header counts in words


def test_a_second_ctrl_c_stops_at_once_without_a_checkpoint(tmp_path, data_dir):
    """Two Ctrl-Cs that land during one long step reach Python's handler once; they still count
    as two. The process boundary is the point: a real process, real signals.

    The steps are long (about 2 s: resnet20, batch 512, one thread), but the first press can still
    land just before a step ends, so that the run stops at that step's end and the second press
    lands as the process exits. That is a user's case too, and it must end as a stop does (exit
    130, the checkpoint, no traceback); the presses are then tried again on a fresh run."""
    flags = tiny_flags(model="resnet20", max_steps=200, batch_size=512, threads=1, check_every=1)
    for attempt in range(3):
        run = tmp_path / f"run{attempt}"
        proc = start_cli("train", *flags, "--checkpoint-every", 0, "--out", run, data_dir=data_dir)
        header = proc.stdout.readline()  # logged as the loop starts
        assert "resnet20" in header, header + proc.stderr.read()
        time.sleep(1.0)  # inside the loop, its signal handlers installed
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)  # two presses, not one signal twice (a pending signal is not queued)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and "Traceback" not in err, err
        if "checkpoint saved" not in err:
            break  # both presses landed within one step
    assert err.strip() == "interrupted", err
    assert not (run / "checkpoints" / "last.pt").exists()


def test_ctrl_c_pressed_again_as_a_stopped_run_exits_changes_nothing(tmp_path, data_dir):
    """The first press stops the run at its step's end and saves the checkpoint; presses that land
    while the process exits (here: one every millisecond from the stop's message to the end)
    find nothing to interrupt: the exit code and the checkpoint of the stop, no traceback."""
    run = tmp_path / "run"
    flags = tiny_flags(max_steps=100_000, check_every=1)
    proc = start_cli("train", *flags, "--checkpoint-every", 0, "--out", run, data_dir=data_dir)
    assert "small_cnn" in proc.stdout.readline()
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    said = proc.stderr.readline()
    assert said.startswith("stopped on SIGINT at step "), said + proc.stderr.read()
    while proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.001)
    rest = proc.stderr.read()
    assert proc.returncode == 130 and rest == "", rest
    assert (run / "checkpoints" / "last.pt").exists()


def test_verbose_says_more(cli, tmp_path):
    quiet = cli("train", *tiny_flags(max_steps=1), "--out", tmp_path / "a")
    loud = cli("train", *tiny_flags(max_steps=1), "--out", tmp_path / "b", "--verbose")
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert "config: {" not in quiet.stdout and "read from the cache" not in quiet.stdout
    assert 'config: {"model": "small_cnn"' in loud.stdout
    assert "cifar10-sample: read from the cache" in loud.stdout
