"""What the user sees while training: a header, then a rich progress bar refreshed about once a
second on a terminal; piped, a plain line at least every 30 s and one per epoch, so CI logs stay
readable. Both say when the whole run ends (at the measured speed) and, with a time budget, how
much of it is left. Lines go through the `reslab` logger (the CLI prints its INFO records), so
notebooks and applications decide where they go."""

from __future__ import annotations

import logging
import sys
from typing import NamedTuple

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

log = logging.getLogger("reslab.train")

LIVE_EVERY_S = 1.0  # progress bar refresh on a terminal
PIPED_EVERY_S = 30.0  # longest silence in a log file


def _fmt(row: dict) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    def num(v):
        return "-" if v is None else f"{v:.4f}"

    return (
        f"epoch {row['epoch']} step {row['step']} train_loss {num(row['train_loss'])} "
        f"train_acc {pct(row['train_acc'])} val_loss {num(row['val_loss'])} "
        f"val_acc {pct(row['val_acc'])} lr {row['lr']:.4g} {row['epoch_time_s']:.1f}s "
        f"{row['images_per_s']:.0f} img/s"
    )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Left(NamedTuple):
    """What is left of the run: its steps, and the time budget's seconds (None: no budget)."""

    steps: int
    budget_s: float | None = None

    def text(self, batch_size: int, images_per_s: float) -> str:
        """ "run ends in 3m10s", with "; budget 4m02s left" where there is one."""
        eta = _duration(self.steps * batch_size / images_per_s) if images_per_s else "?"
        budget = "" if self.budget_s is None else f"; budget {_duration(self.budget_s)} left"
        return f"run ends in {eta}{budget}"


class ProgressDisplay:
    def __init__(
        self,
        total_epochs: int,
        enabled: bool | None = None,
        quiet: bool = False,
        batch_size: int = 0,
    ):
        self.quiet = quiet
        self.batch_size = batch_size  # images per step, for the ETA of a piped line
        self.live = (sys.stdout.isatty() if enabled is None else enabled) and not quiet
        self.every_s = LIVE_EVERY_S if self.live else PIPED_EVERY_S
        self.total_epochs = total_epochs
        self.console = Console()
        self._progress: Progress | None = None
        self._task = None
        self._epoch, self._total_batches = 0, 0

    def header(self, text: str) -> None:
        """One line at the start: what trains, on what, where, how long an epoch is."""
        self.message(text)

    def start_epoch(self, epoch: int, total_batches: int, done: int = 0) -> None:
        """An epoch of `total_batches` steps (fewer than a full one where the run ends in it)
        starts at batch `done`."""
        self._epoch, self._total_batches = epoch, total_batches
        if not self.live:
            return
        self._progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{self.total_epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=total_batches, completed=done, info="")

    def set_epoch_steps(self, total_batches: int) -> None:
        """The epoch's length changed (a time budget re-sized the run)."""
        self._total_batches = total_batches
        if self._progress is not None:
            self._progress.update(self._task, total=total_batches)

    def update(
        self,
        batches_done: int,
        loss: float,
        acc: float,
        lr: float,
        images_per_s: float,
        left: Left | None = None,
    ) -> None:
        info = f"loss {loss:.4f} acc {100 * acc:.1f}% lr {lr:.4g} {images_per_s:.0f} img/s"
        if left is not None:
            info += f", {left.text(self.batch_size, images_per_s)}"
        if self._progress is not None:
            self._progress.update(self._task, completed=batches_done, info=info)
        elif not self.quiet and batches_done < self._total_batches:
            log.info(
                f"epoch {self._epoch + 1}/{self.total_epochs} step {batches_done}/"
                f"{self._total_batches} {info}"
            )

    def end_epoch(self, row: dict) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if not self.quiet:
            log.info(_fmt(row))

    def message(self, text: str) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if not self.quiet:
            log.info(text)
