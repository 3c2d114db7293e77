"""Graceful stopping: SIGINT or SIGTERM asks the loop to finish its step and checkpoint; a second
one stops at once, without a checkpoint.

Python runs a signal's handler only between bytecodes, once for however many of that signal
arrived meanwhile: two quick Ctrl-Cs during one long step would count as one. So every signal
is also counted where it lands, through the wakeup fd (`signal.set_wakeup_fd`), to which the
interpreter writes one byte per signal as it arrives."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from reslab.errors import StopRequested

__all__ = ["GracefulStop", "StopRequested"]


class GracefulStop:
    """While active, the first SIGINT/SIGTERM sets `signum`; a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = 0
        self._previous: dict[int, object] = {}
        self._pipe: tuple[int, int] | None = None
        self._previous_fd = -1

    @property
    def requested(self) -> bool:
        return self.signum != 0

    def _arrived(self) -> int:
        """Our signals that landed since the last call (at least the one being handled)."""
        count = 0
        with contextlib.suppress(BlockingIOError, OSError):
            while self._pipe is not None and (data := os.read(self._pipe[0], 512)):
                count += sum(b in self.SIGNALS for b in data)
        return max(count, 1)

    def _handle(self, signum, frame):
        arrived = self._arrived()
        if self.signum or arrived > 1:
            raise KeyboardInterrupt  # impatient second signal: stop without a checkpoint
        self.signum = signum

    def __enter__(self) -> GracefulStop:
        # Handlers can only be installed from the main thread (e.g. not under a test runner's
        # worker thread); elsewhere the loop still stops on its own `requested` flag.
        if threading.current_thread() is threading.main_thread():
            read, write = os.pipe()
            os.set_blocking(read, False)
            os.set_blocking(write, False)
            self._pipe = (read, write)
            self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
        if self._pipe is not None:
            signal.set_wakeup_fd(self._previous_fd)
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
