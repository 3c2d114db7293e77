"""Time the process spends stopped (SIGSTOP, Ctrl-Z) is not training time."""

import os
import subprocess
import sys
import time

import pytest
import torch

from reslab.train.engine import Position, Stopwatch
from reslab.train.stopped import NeverStopped, StoppedTime

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX")


def _stop_me(after: float, for_s: float) -> subprocess.Popen:
    """A helper process that stops this one `after` seconds from now, for `for_s` seconds."""
    return subprocess.Popen(
        ["sh", "-c", f"sleep {after}; kill -STOP {os.getpid()}; sleep {for_s}; "
         f"kill -CONT {os.getpid()}"]
    )  # fmt: skip


def test_a_stop_is_seen_and_measured():
    with StoppedTime(tick=0.05, shortest=0.5) as stopped:
        helper = _stop_me(0.3, 2.0)
        time.sleep(3.0)  # stopped for 2 s in the middle
        helper.wait()
        seen = stopped.seconds()
    assert 1.8 <= seen <= 2.4, seen


def test_a_busy_process_is_not_a_stopped_one():
    """The watching thread kept from running by a thread that holds the GIL wakes late too, but
    the process used CPU time meanwhile: not stopped."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(5.0)  # this thread keeps the GIL for seconds at a time
    try:
        with StoppedTime(tick=0.05, shortest=0.5) as stopped:
            time.sleep(0.2)
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                pass
    finally:
        sys.setswitchinterval(switch)
    assert stopped.seconds() == 0.0


def test_the_stopwatch_leaves_stopped_time_out():
    pos = Position()
    with StoppedTime(tick=0.05, shortest=0.5) as stopped:
        watch = Stopwatch(pos, torch.device("cpu"), stopped)
        begun = time.monotonic()
        helper = _stop_me(0.2, 2.0)
        time.sleep(2.8)
        helper.wait()
        seconds, elapsed = watch.stop(), time.monotonic() - begun
    assert elapsed >= 2.8 and 0.5 <= seconds <= elapsed - 1.7, (seconds, elapsed)
    assert pos.wall_time_s == seconds
    plain = Stopwatch(Position(), torch.device("cpu"), NeverStopped())
    time.sleep(0.1)
    assert plain.stop() >= 0.1


def test_the_stopwatch_reads_the_training_time_alone_while_stopped(monkeypatch):
    from reslab.train import engine

    now = [10.0]
    monkeypatch.setattr(engine, "clock", lambda: now[0])
    pos = Position(wall_time_s=5.0)
    watch = Stopwatch(pos, torch.device("cpu"), NeverStopped())
    now[0] = 13.0
    assert watch.now() == 8.0 and watch.stop() == 3.0 and pos.wall_time_s == 8.0
    now[0] = 20.0  # an evaluation between the epoch's end and the next epoch's start
    assert watch.now() == 8.0  # not the epoch counted twice, nor the evaluation
    watch.start()
    now[0] = 21.0
    assert watch.now() == 9.0
