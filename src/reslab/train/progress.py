"""What the user sees while training: a rich progress bar on a terminal, one line per epoch
otherwise, so CI logs stay readable."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


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


class ProgressDisplay:
    def __init__(self, total_epochs: int, enabled: bool | None = None, quiet: bool = False):
        self.quiet = quiet
        self.live = (sys.stdout.isatty() if enabled is None else enabled) and not quiet
        self.total_epochs = total_epochs
        self.console = Console()
        self._progress: Progress | None = None
        self._task = None

    def start_epoch(self, epoch: int, total_batches: int, done: int = 0) -> None:
        if not self.live:
            return
        self._progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{self.total_epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=total_batches, completed=done, info="")

    def update(self, batches_done: int, loss: float, acc: float, lr: float, images_per_s: float):
        if self._progress is not None:
            info = f"loss {loss:.4f} acc {100 * acc:.1f}% lr {lr:.4g} {images_per_s:.0f} img/s"
            self._progress.update(self._task, completed=batches_done, info=info)

    def end_epoch(self, row: dict) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if not self.quiet:
            print(_fmt(row), flush=True)

    def message(self, text: str) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if not self.quiet:
            print(text, flush=True)
