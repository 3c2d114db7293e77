"""The training step and the training loop.

`train_loop` reads top to bottom: epochs of steps; at check points (every `check_every` steps and
at each epoch's end) the NaN check, the time budget and the decision to stop; at epoch ends
validation, the metrics row and a checkpoint. What cuts across it is an object it asks at those
points: the time budget (`reslab.train.budget`), the processes (`World`), the checkpoints
(`Checkpoints`), the progress display. Host-device syncs are rare on purpose: step losses stay
on the device and are read at check points only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from reslab.errors import CheckpointError, DivergenceError
from reslab.metrics import EvalResult, evaluate_batches
from reslab.run.checkpoint import save_checkpoint
from reslab.run.directory import RunDir
from reslab.run.schedule import part_size, progressive_part
from reslab.train.budget import NoBudget, TimeBudget, clock
from reslab.train.progress import Left, ProgressDisplay
from reslab.train.runtime import rng_state, set_rng_state
from reslab.train.setup import Setup
from reslab.train.stop import GracefulStop, StopRequested
from reslab.train.stopped import NeverStopped, StoppedTime

log = logging.getLogger("reslab.train")


@dataclass
class Position:
    """Where the loop is; saved in every checkpoint."""

    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimizer steps done in total
    best_val_acc: float = -1.0
    best_epoch: int = 0
    wall_time_s: float = 0.0  # training time over all sessions of this run (steps only)
    budget_spent_s: float = 0.0  # --time-budget: the budget spent up to this checkpoint
    # --progressive: the steps at which the run moved to each later image size so far
    switches: list[int] = dataclasses.field(default_factory=list)


class EpochMeter:
    """Training loss and accuracy summed on the device, and the epoch's training seconds."""

    def __init__(self, device: torch.device, state: dict | None = None):
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss*n, correct, n
        self.seconds = 0.0
        if state is not None:  # an epoch a checkpoint cut in the middle
            self.sums.copy_(state["sums"])
            self.seconds = state["seconds"]

    def add(self, loss: torch.Tensor, correct: torch.Tensor, n: int) -> None:
        # new_full fills on the device: a tensor made from the host int would be a copy from
        # pageable memory, which waits for the stream (a sync in every step).
        count = loss.new_full((), n, dtype=torch.float64)
        self.sums += torch.stack([loss.double() * n, correct.double(), count])

    def read(self, sum_over=lambda t: t) -> tuple[float, float, int]:
        """Mean loss and accuracy and the count (pass `World.sum` for every rank's samples)."""
        loss_n, correct, n = sum_over(self.sums.clone()).tolist()  # host-device sync
        return (loss_n / n, correct / n, int(n)) if n else (float("nan"), float("nan"), 0)

    def state_dict(self) -> dict:
        return {"sums": self.sums.cpu(), "seconds": self.seconds}


class Stopwatch:
    """The run's training time: the seconds its steps took, evaluations and saves left out, and
    time the process spent stopped (`stopped`: SIGSTOP, Ctrl-Z) too. `start` when steps begin,
    `stop` before anything else; `now` reads it in between."""

    def __init__(self, pos: Position, device: torch.device, stopped: StoppedTime | NeverStopped):
        self.pos, self.device, self.stopped = pos, device, stopped
        self.start()

    def start(self) -> None:
        self.mark, self.stopped_mark = clock(), self.stopped.seconds()
        self.running = True

    def now(self) -> float:
        if not self.running:  # between stop and start (an evaluation, a save): nothing to add
            return self.pos.wall_time_s
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # host-device sync: time the steps, not their queue
        stopped = self.stopped.seconds() - self.stopped_mark
        return self.pos.wall_time_s + clock() - self.mark - stopped

    def stop(self) -> float:
        """Add the time since `start` to the run's; returns it (for the epoch's)."""
        seconds = self.now() - self.pos.wall_time_s
        self.pos.wall_time_s += seconds
        self.running = False
        return seconds

    @contextlib.contextmanager
    def paused(self, meter: EpochMeter) -> Iterator[None]:
        """Work inside the steps that is not training (a checkpoint, a measurement): the time
        up to it goes to the epoch's `meter`, the time it takes to neither."""
        meter.seconds += self.stop()
        yield
        self.start()


def train_step(s: Setup, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with s.autocast():
        logits = s.step_model(x)
        loss = s.loss_fn(logits, y)
    s.optimizer.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    s.scaler.step(s.optimizer)
    s.scaler.update()
    return loss.detach(), (logits.argmax(1) == y).sum()


class Probe(Protocol):
    """Measurements taken while the model trains (an experiment's, along the trajectory). The
    loop asks `due` before the first step and after every step, and calls `measure` when it
    is; measuring is not training time. `measure` must leave the model, its buffers and the
    random streams as it found them, so that a probed run trains as an unprobed one."""

    def due(self, step: int, total_steps: int) -> bool: ...

    def measure(self, model: nn.Module, step: int) -> None: ...


class NoProbe:
    def due(self, step: int, total_steps: int) -> bool:
        return False

    def measure(self, model: nn.Module, step: int) -> None:
        raise AssertionError("never due")


NO_PROBE = NoProbe()


@dataclass
class Hooks:
    """What a caller adds to the loop: what it shows, where metrics also go, when to stop,
    what it measures on the way."""

    display: ProgressDisplay
    should_stop: Callable[[int], bool] = lambda step: False
    writer: object | None = None  # a TensorBoard SummaryWriter
    probe: Probe = NO_PROBE


def train_loop(
    s: Setup,
    run: RunDir,
    pos: Position,
    meter_state: dict | None,
    hooks: Hooks,
    budget: TimeBudget | NoBudget,
    watch: Stopwatch,
) -> Position:
    """Train from `pos` until the run's length is reached; returns where it ended. A stop
    request (SIGINT, SIGTERM, `should_stop`) saves a checkpoint and raises StopRequested."""
    k, world, length, display = s.config.check_every, s.world, s.length, hooks.display
    recent = torch.zeros(k, device=s.device)  # the last k step losses, read at check points
    checkpoints = Checkpoints(s, run, budget)
    if budget.budgeted:  # what an evaluation costs, before the probe sizes the run on it
        budget.evaluated(*time_evaluation(s))
    if hooks.probe.due(pos.step, length.total_steps):  # the start: step 0, or a resumed step
        hooks.probe.measure(s.model, pos.step)
    with GracefulStop() as stop:
        while not length.finished(pos.step, pos.epoch):
            meter, meter_state = EpochMeter(s.device, meter_state), None
            display.total_epochs = length.epochs  # a time budget may have re-sized the run
            display.start_epoch(pos.epoch, length.epoch_steps(pos.step, pos.batch), pos.batch)
            checked, shown, interrupt = pos.step, clock(), False
            _set_image_size(s, pos)
            watch.start()
            for x, y in s.train_loader.iter_epoch(pos.epoch, start_batch=pos.batch):
                loss, correct = train_step(s, x, y)
                recent[pos.step % k] = loss
                meter.add(loss, correct, len(y))
                s.scheduler.step()
                if s.ema is not None:
                    s.ema.update_parameters(s.model)
                pos.step += 1
                pos.batch += 1
                budget.stepped(pos.step)  # a time budget times the first steps, then sizes the run
                if hooks.probe.due(pos.step, length.total_steps):
                    with watch.paused(meter):
                        hooks.probe.measure(s.model, pos.step)
                end = length.ends_epoch(pos.step, pos.batch)
                at_check = end or pos.step - checked >= k
                interrupt = world.agree(
                    stop.requested or hooks.should_stop(pos.step), at_check, s.device
                )
                if at_check or interrupt:
                    _check_finite(s, run, pos, recent, checked + 1)  # host-device sync
                    checked = pos.step
                    budget.refit(pos.step)  # the machine's speed may change: fit to time left
                    end = length.ends_epoch(pos.step, pos.batch)
                if clock() - shown >= display.every_s or (at_check and end):
                    _show(s, pos, meter, watch, display, budget)  # host-device sync, rate-limited
                    shown = clock()
                if end or interrupt:
                    break
                if checkpoints.due(at_check):  # mid-epoch: resumes exactly, as after a SIGINT
                    with watch.paused(meter):
                        checkpoints.save(pos, meter)
                _set_image_size(s, pos)  # of the next batch, which the loader draws next
            meter.seconds += watch.stop()
            if interrupt:
                checkpoints.save(pos, meter)
                raise StopRequested(_stopped_message(stop, pos, run), stop.signum or 2)
            _end_epoch(s, run, pos, meter, hooks, checkpoints, budget)
    return pos


def _set_image_size(s: Setup, pos: Position) -> None:
    """Progressive resizing (`progressive`): the size the loader scales the next batch to, after
    the run's length was last fitted. A function of the step, the length and the part reached
    (`pos.switches`, in every checkpoint), so a resumed run draws what it would have."""
    sizes = s.config.progressive
    if sizes:
        part = progressive_part(sizes, pos.step, s.length.total_steps, len(pos.switches))
        pos.switches += [pos.step] * (part - len(pos.switches))
        s.train_loader.size = part_size(sizes, part)


def _check_finite(s: Setup, run: RunDir, pos: Position, recent: torch.Tensor, first: int):
    """Raise if any loss of steps first..pos.step (1-based) is NaN/Inf, naming the first such
    step. Summed over ranks, so a NaN on one rank stops them all at the same step."""
    k = len(recent)
    steps = list(range(first, pos.step + 1))
    values = s.world.sum(recent[[(i - 1) % k for i in steps]])
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):  # host-device sync above (nonzero)
        i = int(bad[0])
        where = (
            f"the last good checkpoint, {run.last}, is from epoch {pos.epoch}"
            if run.last.is_file()
            else "no checkpoint had been written yet"
        )
        raise DivergenceError(
            f"loss became {values[i].item()} at step {steps[i]}: training "
            f"diverged and stopped; {where}. Try a lower learning rate "
            f"(lr was {s.config.lr:g}) or a warmup (--warmup-epochs)",
            step=steps[i],
        )


def _show(s: Setup, pos: Position, meter: EpochMeter, watch: Stopwatch, display, budget) -> None:
    if display.quiet:
        return
    loss, acc, n = meter.read()  # this rank's samples: other ranks show nothing
    elapsed = meter.seconds + watch.now() - pos.wall_time_s
    lr = s.optimizer.param_groups[0]["lr"]
    display.total_epochs = s.length.epochs
    display.set_epoch_steps(s.length.epoch_steps(pos.step, pos.batch))  # a budget re-sizes
    left = Left(s.length.total_steps - pos.step, budget.left())
    display.update(pos.batch, loss, acc, lr, n / elapsed if elapsed else 0.0, left)


def _stopped_message(stop: GracefulStop, pos: Position, run: RunDir) -> str:
    name = "SIGINT" if stop.signum == 2 else "SIGTERM" if stop.signum else "request"
    return (
        f"stopped on {name} at step {pos.step} (epoch {pos.epoch + 1}); checkpoint saved. "
        f"Resume with: reslab train --resume {run.path}"
    )


def _end_epoch(s, run, pos, meter, hooks, checkpoints, budget) -> None:
    """Validate, record the epoch's row, count the epoch done and save a checkpoint (also the
    best one when validation improved; without a validation split, the latest is the best)."""
    s.sync_norms()
    val = None
    if s.val_loader is not None:
        began = clock()
        val = evaluate(s, s.val_loader)
        budget.evaluated(clock() - began, len(s.val_loader.labels))
    row = _epoch_row(s, pos, meter, val)
    hooks.display.end_epoch(row)
    if s.world.is_main:
        run.append_metrics(row)
        if hooks.writer is not None:
            for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s"):
                if row[key] is not None:
                    hooks.writer.add_scalar(key, row[key], pos.step)
    pos.epoch += 1
    pos.batch = 0
    improved = val is None or val.top1 > pos.best_val_acc
    if improved:
        pos.best_val_acc, pos.best_epoch = (val.top1 if val else -1.0), pos.epoch
    budget.refit(pos.step)  # the evaluation took time: fit the length to what is left
    checkpoints.save(pos, EpochMeter(s.device), best=improved)


def _epoch_row(s: Setup, pos: Position, meter: EpochMeter, val: EvalResult | None) -> dict:
    loss, acc, n = meter.read(s.world.sum)
    return {
        "epoch": pos.epoch + 1,
        "step": pos.step,
        "train_loss": loss,
        "train_acc": acc,
        "val_loss": val.loss if val else None,
        "val_acc": val.top1 if val else None,
        "lr": s.optimizer.param_groups[0]["lr"],
        "epoch_time_s": meter.seconds,
        "images_per_s": n / meter.seconds if meter.seconds else 0.0,
    }


def time_evaluation(s: Setup, images: int | None = None) -> tuple[float, int]:
    """Seconds for `images` made-up images through the run's evaluation (its model, precision
    and test-time augmentation) and that number: the second of two passes, the first paying
    for the kernels' set-up. No data is read, no random number drawn and nothing kept (eval
    mode, no gradients). By default one batch of the test loader's size (the time per image
    grows with the batch: on 2 CPU cores 2.1 ms at 128 CIFAR images in six views, 2.4 at 500),
    at most as many pixels as that many 32x32 images (10 images at 224x224 for 500), so that
    large images do not make the timing itself cost much of a budget."""
    h, w = s.data.image_size
    if images is None:
        batch = min(s.test_loader.batch_size, max(1, s.test_loader.num_samples))
        images = min(batch, max(8, batch * 32 * 32 // (h * w)))
    shape = (images, s.data.in_channels, h, w)
    x = torch.linspace(-2.0, 2.0, math.prod(shape), device=s.device).view(shape)
    if s.config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    batch = [(x, torch.zeros(images, dtype=torch.long, device=s.device))]
    seconds = 0.0
    for _ in range(2):
        began = clock()  # evaluate_batches ends in a host-device sync: the timing waits for it
        evaluate_batches(
            s.eval_model, batch, s.data.num_classes, s.autocast, s.config.tta,
            tta_shift=s.config.tta_shift,
        )  # fmt: skip
        seconds = clock() - began
    return seconds, images


def evaluate(s: Setup, loader) -> EvalResult:
    """The run's model (its EMA where there is one) on a split, every rank's shard summed."""
    return evaluate_batches(
        s.eval_model, loader, s.data.num_classes, s.autocast, s.config.tta, reduce=s.world.sum,
        tta_shift=s.config.tta_shift,
    )  # fmt: skip


class Checkpoints:
    """Writes the run's checkpoints (one writer: rank 0): at each epoch's end, every
    `checkpoint_every` seconds inside an epoch, and when a stop is requested."""

    def __init__(self, s: Setup, run: RunDir, budget: TimeBudget | NoBudget):
        self.s, self.run, self.budget = s, run, budget
        self.saved_at = clock()

    def due(self, at_check: bool) -> bool:
        """Time for a checkpoint inside the epoch: decided at check points, by every process
        together."""
        every = self.s.config.checkpoint_every
        due = bool(every) and at_check and clock() - self.saved_at >= every
        return self.s.world.agree(due, at_check, self.s.device)

    def save(self, pos: Position, meter: EpochMeter, best: bool = False) -> None:
        pos.budget_spent_s = self.budget.spent()
        self.s.sync_norms()
        if not self.s.world.is_main:  # every rank holds the same state
            return
        began = clock()
        state = checkpoint_state(self.s, pos, meter)
        save_checkpoint(self.run.last, state)
        if best:
            save_checkpoint(self.run.best, state)
        self.saved_at = clock()
        self.budget.saved(self.saved_at - began)


def checkpoint_state(s: Setup, pos: Position, meter: EpochMeter) -> dict:
    return {
        "config": s.config.to_dict(),
        "data": s.data_meta(),
        "model": s.model.state_dict(),
        "ema": s.ema.state_dict() if s.ema is not None else None,
        "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "scaler": s.scaler.state_dict(),
        "rng": rng_state(),
        "position": dataclasses.asdict(pos),
        "meter": meter.state_dict(),
        "length": s.length.state_dict(),
        "device": s.device.type,
    }


def restore(s: Setup, state: dict) -> tuple[Position, dict]:
    """Load a checkpoint into a freshly built run; returns where it was and its epoch meter."""
    try:
        s.model.load_state_dict(state["model"])
        if s.ema is not None and state.get("ema") is not None:
            s.ema.load_state_dict(state["ema"])
        s.optimizer.load_state_dict(state["optimizer"])
        s.scheduler.load_state_dict(state["scheduler"])
        s.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        if s.config.time_budget and "length" in state:  # the length the budget last fitted
            s.length.load_state_dict(state["length"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise CheckpointError(
            f"the checkpoint does not fit this run ({str(e).splitlines()[0]})"
        ) from None
    saved_on = state.get("device")  # (absent from checkpoints written before it was recorded)
    if saved_on is not None and saved_on != s.device.type and s.world.is_main:
        log.info(
            f"note: the checkpoint was written on {saved_on} and the run continues on "
            f"{s.device.type}; it picks up where it stopped, but its kernels and random "
            f"streams differ, so it is not bit-identical to a run that stayed on {saved_on}"
        )
    return Position(**state["position"]), state["meter"]
