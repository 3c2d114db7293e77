"""Time the process spent stopped (SIGSTOP, or Ctrl-Z and `fg`), which is not training time.

A stopped process cannot see the signal that stops it, but it can see the gap: a thread that
wakes every `tick` seconds wakes late by however long the process was stopped. Lateness alone
would also catch a thread kept waiting for the GIL or the CPU, so a late tick counts as stopped
time only when the process used almost no CPU time meanwhile: a stopped process uses none, a busy
one uses about a second a second.
"""

from __future__ import annotations

import threading
import time


class StoppedTime:
    """`seconds()`: how long the process has been stopped since `start`, within a few ticks
    (`tick` seconds each) per stop; stops shorter than `shortest` are not seen. Use as a context
    manager, which starts and ends its thread."""

    def __init__(self, tick: float = 0.1, shortest: float = 1.0):
        self.tick, self.shortest = tick, shortest
        self._seconds = 0.0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="reslab-stopped-time", daemon=True)

    def seconds(self) -> float:
        return self._seconds

    def _watch(self) -> None:
        wall, cpu = time.monotonic(), time.process_time()
        while not self._halt.wait(self.tick):
            now, used = time.monotonic(), time.process_time()
            late = now - wall - self.tick
            if late >= self.shortest and used - cpu < 0.1 * late:
                self._seconds += late  # one writer; a float store is atomic under the GIL
            wall, cpu = now, used

    def __enter__(self) -> StoppedTime:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self._thread.join()


class NeverStopped:
    """For a stopwatch that counts all of the time."""

    def seconds(self) -> float:
        return 0.0
