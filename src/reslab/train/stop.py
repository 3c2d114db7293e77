"""Graceful stopping: SIGINT or SIGTERM asks the loop to finish its step and checkpoint."""

from __future__ import annotations

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

    @property
    def requested(self) -> bool:
        return self.signum != 0

    def _handle(self, signum, frame):
        if self.signum:
            raise KeyboardInterrupt  # impatient second signal: stop without a checkpoint
        self.signum = signum

    def __enter__(self) -> GracefulStop:
        # Handlers can only be installed from the main thread (e.g. not under a test runner's
        # worker thread); elsewhere the loop still stops on its own `requested` flag.
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
