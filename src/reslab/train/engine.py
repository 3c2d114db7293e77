"""The training loop. It reads top to bottom: build, (resume), epochs of steps, evaluate, save.

Host-device syncs are rare on purpose: step losses stay on the device and are read every
`check_every` steps (NaN check, progress) and once per epoch (metrics).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from reslab.errors import CheckpointError, ConfigError, DivergenceError
from reslab.models import count_params
from reslab.train import distributed
from reslab.train.budget import WARMUP_STEPS, Budget, Sizer, clock
from reslab.train.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from reslab.train.config import TrainConfig, read_toml, saved_config
from reslab.train.distributed import World
from reslab.train.eval_loop import EvalResult, evaluate_batches
from reslab.train.progress import ProgressDisplay
from reslab.train.run_dir import RunDir
from reslab.train.runtime import (
    resolve_device,
    resolve_precision,
    rng_state,
    seed_everything,
    set_rng_state,
)
from reslab.train.setup import UNBOUNDED_STEPS, Setup, build, build_model, length
from reslab.train.stop import GracefulStop, StopRequested

log = logging.getLogger("reslab.train")

# The keys a resumed run may change: how long it runs and where, never what it computes.
RESUME_OVERRIDABLE = ("epochs", "max_steps", "device", "threads", "check_every", "checkpoint_every")


@dataclass
class Position:
    """Where the loop is; saved in every checkpoint."""

    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimizer steps done in total
    best_val_acc: float = -1.0
    best_epoch: int = 0
    wall_time_s: float = 0.0  # training wall time over all sessions of this run
    budget_spent_s: float = 0.0  # --time-budget: the budget spent up to this checkpoint


@dataclass
class TrainResult:
    """What a finished run returns: where it lives, its summary.json, and the final model."""

    run_dir: Path
    summary: dict  # the content of summary.json: test_acc, test_top5, epochs, wall_time_s, ...
    model: nn.Module  # the final model (the EMA model when --ema is on), in eval mode
    finished_before: bool = False  # resume() found the run already finished and left it


class EpochMeter:
    """Training loss and accuracy summed on the device; read once per epoch."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss*n, correct, n
        self.seconds = 0.0

    def add(self, loss: torch.Tensor, correct: torch.Tensor, n: int) -> None:
        # new_full fills on the device: a tensor made from the host int would be a copy from
        # pageable memory, which waits for the stream (a sync in every step).
        count = loss.new_full((), n, dtype=torch.float64)
        self.sums += torch.stack([loss.double() * n, correct.double(), count])

    def read(self, world: World = distributed.SINGLE) -> tuple[float, float, int]:
        """Means over every rank's samples (pass the world; the default reads this rank's)."""
        sums = distributed.all_reduce_sum(self.sums.clone(), world)
        loss_n, correct, n = sums.tolist()  # host-device sync
        return (loss_n / n, correct / n, int(n)) if n else (float("nan"), float("nan"), 0)


def train_step(s: Setup, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with s.autocast():
        logits = s.step_model(x)
        loss = s.loss_fn(logits, y)
    s.optimizer.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    s.scaler.step(s.optimizer)
    s.scaler.update()
    return loss.detach(), (logits.argmax(1) == y).sum()


def _check_finite(
    recent: torch.Tensor,
    first: int,
    last: int,
    run: RunDir,
    pos: Position,
    lr,
    world: World = distributed.SINGLE,
):
    """Raise if any loss of steps first..last (1-based) is NaN/Inf, naming the first such step.
    Summed over ranks, so a NaN on one rank stops them all at the same step."""
    k = len(recent)
    steps = list(range(first, last + 1))
    values = distributed.all_reduce_sum(recent[[(s - 1) % k for s in steps]], world)
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):  # host-device sync above (nonzero); taken every check_every steps only
        i = int(bad[0])
        where = (
            f"the last good checkpoint, {run.last}, is from epoch {pos.epoch}"
            if run.last.is_file()
            else "no checkpoint had been written yet"
        )
        raise DivergenceError(
            f"loss became {values[i].item()} at step {steps[i]}: training "
            f"diverged and stopped; {where}. Try a lower learning rate "
            f"(lr was {lr:g}) or a warmup (--warmup-epochs)",
            step=steps[i],
        )


def _checkpoint_state(s: Setup, pos: Position, meter: EpochMeter) -> dict:
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
        "meter": {"sums": meter.sums.cpu(), "seconds": meter.seconds},
        "length": {"epochs": s.epochs, "total_steps": s.total_steps},
        "device": s.device.type,
    }


def _restore(s: Setup, state: dict) -> tuple[Position, dict]:
    try:
        s.model.load_state_dict(state["model"])
        if s.ema is not None and state.get("ema") is not None:
            s.ema.load_state_dict(state["ema"])
        s.optimizer.load_state_dict(state["optimizer"])
        s.scheduler.load_state_dict(state["scheduler"])
        s.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        if s.config.time_budget and "length" in state:  # the length the budget last fitted
            s.epochs, s.total_steps = state["length"]["epochs"], state["length"]["total_steps"]
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


def _epoch_row(s: Setup, pos: Position, meter: EpochMeter, val: EvalResult | None) -> dict:
    loss, acc, n = meter.read(s.world)
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


class Trainer:
    def __init__(
        self,
        s: Setup,
        run: RunDir,
        display: ProgressDisplay,
        should_stop: Callable[[int], bool] | None = None,
        writer=None,
        sizer: Sizer | None = None,
    ):
        self.s, self.run, self.display = s, run, display
        self.should_stop = should_stop or (lambda step: False)
        self.writer = writer
        self.sizer = sizer  # --time-budget: fits the run's length to the time left
        self.recent = torch.zeros(s.config.check_every, device=s.device)  # last step losses
        self.saved_at = clock()  # when the last checkpoint was written
        self.first_step: int | None = None  # this session's first step

    def fit(self, pos: Position, meter_state: dict | None = None) -> Position:
        s = self.s
        with GracefulStop() as stop:
            # Without --epochs the step count alone ends the run: a run cut by --max-steps in
            # mid-epoch has counted that epoch, and a larger --max-steps on resume goes on.
            while pos.step < s.total_steps and (pos.epoch < s.epochs or not s.config.epochs):
                meter = EpochMeter(s.device)
                if meter_state is not None:
                    meter.sums.copy_(meter_state["sums"])
                    meter.seconds = meter_state["seconds"]
                    meter_state = None
                if self._run_epoch(pos, meter, stop):
                    self._save(pos, meter)
                    name = "SIGINT" if stop.signum == 2 else "SIGTERM" if stop.signum else "request"
                    raise StopRequested(
                        f"stopped on {name} at step {pos.step} (epoch {pos.epoch + 1}); "
                        f"checkpoint saved. Resume with: reslab train --resume {self.run.path}",
                        stop.signum or 2,
                    )
                self._end_epoch(pos, meter)
        return pos

    def _interrupt(self, stop: GracefulStop, step: int, at_check: bool) -> bool:
        wanted = stop.requested or self.should_stop(step)
        if not self.s.world.enabled:
            return wanted
        # Across processes the decision is collective, taken at check points only.
        return at_check and distributed.any_flag(wanted, self.s.world, self.s.device)

    def _checkpoint_due(self, at_check: bool) -> bool:
        """A time-based checkpoint inside the epoch: `checkpoint_every` seconds after the last
        one, decided at check points (collectively across processes, as interrupts are)."""
        every = self.s.config.checkpoint_every
        if not every or not at_check:
            return False
        due = clock() - self.saved_at >= every
        if not self.s.world.enabled:
            return due
        return distributed.any_flag(due, self.s.world, self.s.device)

    def _run_epoch(self, pos: Position, meter: EpochMeter, stop: GracefulStop) -> bool:
        """One epoch (or its rest); True if it was interrupted."""
        s, k = self.s, self.s.config.check_every
        interrupt = False
        self.display.start_epoch(pos.epoch, len(s.train_loader), pos.batch)
        checked = pos.step
        start = clock()
        shown = start
        for x, y in s.train_loader.iter_epoch(pos.epoch, start_batch=pos.batch):
            loss, correct = train_step(s, x, y)
            self.recent[pos.step % k] = loss
            meter.add(loss, correct, len(y))
            s.scheduler.step()
            if s.ema is not None:
                s.ema.update_parameters(s.model)
            pos.step += 1
            pos.batch += 1
            if self.sizer is not None and not self.sizer.sized:
                start = self._probe(pos, meter, start)
            last = pos.batch == len(s.train_loader) or pos.step >= s.total_steps
            interrupt = self._interrupt(stop, pos.step, pos.step - checked >= k or last)
            at_check = pos.step - checked >= k or last or interrupt
            if at_check:
                _check_finite(
                    self.recent, checked + 1, pos.step, self.run, pos, s.config.lr, s.world
                )
                checked = pos.step
                if self.sizer is not None and self.sizer.sized and not last:
                    # The machine's speed may change: fit the length to the time left again.
                    start = self._account(pos, meter, start)
                    self._refit(pos)
                    last = pos.step >= s.total_steps
            if clock() - shown >= self.display.every_s or (at_check and last):
                self._show(pos, meter, start)
                shown = clock()
            if not (last or interrupt) and self._checkpoint_due(at_check):
                start = self._account(pos, meter, start)
                self._save(pos, meter)  # mid-epoch: resumes exactly, as after a SIGINT
            if last or interrupt:
                break
        self._account(pos, meter, start)
        return interrupt

    def _account(self, pos: Position, meter: EpochMeter, start: float) -> float:
        """Add the time since `start` to the epoch's and the run's clocks; the new start."""
        if self.sizer is not None:
            _sync(self.s.device)  # the budget times the steps themselves, not their queueing
        now = clock()
        meter.seconds += now - start
        pos.wall_time_s += now - start
        if self.sizer is not None:
            self.sizer.add_training(now - start)
        return now

    def _probe(self, pos: Position, meter: EpochMeter, start: float) -> float:
        """Time this session's first steps past the warm-up; once enough are timed, size the
        run to the budget. Returns the epoch clock's start (moved when the time is counted)."""
        z = self.sizer
        if self.first_step is None:
            self.first_step = pos.step - 1
        done = pos.step - self.first_step
        if done == WARMUP_STEPS:  # compilation and autotuning are behind: start timing
            start = self._account(pos, meter, start)
            z.start(pos.step)
        elif done > WARMUP_STEPS and z.probe_done_at(pos.step, clock() - start):
            start = self._account(pos, meter, start)
            self._refit(pos)
        return start

    def _refit(self, pos: Position) -> None:
        """Fit the run's length to the budget's time left (at the probe and at checkpoints)."""
        s, z = self.s, self.sizer
        z.measure(pos.step)
        if pos.step >= s.total_steps:
            # The run has landed at the end of its schedule (the epoch-end save comes after the
            # last step): time left over is not turned into more steps, which would raise the
            # learning rate again.
            return
        s.total_steps = distributed.min_int(z.fit(pos.step), s.world, s.device)
        s.epochs = math.ceil(s.total_steps / s.steps_per_epoch)
        self.display.total_epochs = s.epochs

    def _show(self, pos: Position, meter: EpochMeter, start: float) -> None:
        if self.display.quiet:
            return
        loss, acc, n = meter.read()  # host-device sync, once a second on a terminal at most
        elapsed = meter.seconds + clock() - start
        lr = self.s.optimizer.param_groups[0]["lr"]
        self.display.update(pos.batch, loss, acc, lr, n / elapsed if elapsed else 0.0)

    def _end_epoch(self, pos: Position, meter: EpochMeter) -> None:
        s = self.s
        val = None
        _sync_norms(s)
        if s.val_loader is not None:
            began = clock()
            val = _evaluate(s, s.val_loader)
            if self.sizer is not None:  # what each evaluation still to come will cost
                passes = len(s.val_loader.labels) * (2 if s.config.tta else 1)
                self.sizer.eval_s_per_image = (clock() - began) / passes
        row = _epoch_row(s, pos, meter, val)
        self.display.end_epoch(row)
        if s.world.is_main:
            self.run.append_metrics(row)
        if self.writer is not None:
            for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s"):
                if row[key] is not None:
                    self.writer.add_scalar(key, row[key], pos.step)
        pos.epoch += 1
        pos.batch = 0
        # Without a validation split, "best" is simply the latest epoch.
        improved = val is None or val.top1 > pos.best_val_acc
        if improved:
            pos.best_val_acc = val.top1 if val else -1.0
            pos.best_epoch = pos.epoch
        self._save(pos, EpochMeter(s.device), best=improved)

    def _save(self, pos: Position, meter: EpochMeter, best: bool = False) -> None:
        if self.sizer is not None:
            if self.sizer.sized:
                self._refit(pos)
            pos.budget_spent_s = self.sizer.budget.spent()
        _sync_norms(self.s)
        if not self.s.world.is_main:  # one writer; every rank holds the same state
            return
        began = clock()
        state = _checkpoint_state(self.s, pos, meter)
        save_checkpoint(self.run.last, state)
        if best:
            save_checkpoint(self.run.best, state)
        self.saved_at = clock()
        if self.sizer is not None:
            self.sizer.save_s = max(self.sizer.save_s, self.saved_at - began)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sync_norms(s: Setup) -> None:
    for model in (s.model, s.ema.module if s.ema is not None else None):
        if model is not None:
            distributed.average_norm_statistics(model, s.world)


def _evaluate(s: Setup, loader) -> EvalResult:
    return evaluate_batches(
        s.eval_model,
        loader,
        s.data.num_classes,
        s.autocast,
        s.config.tta,
        reduce=lambda t: distributed.all_reduce_sum(t, s.world),
    )


def _tensorboard(run: RunDir):
    from torch.utils.tensorboard import SummaryWriter  # present: checked by check_runtime

    return SummaryWriter(log_dir=str(run.path / "tensorboard"))


def _header(s: Setup, pos: Position) -> str:
    c, d = s.config, s.data
    val = len(s.val_loader.labels) if s.val_loader is not None else 0
    where = f"from step {pos.step}" if pos.step else f"from {c.init}" if c.init else "from scratch"
    return (
        f"{c.model} ({count_params(s.model):,} params, norm {c.norm}) on {d.name}: "
        f"{len(s.train_loader.labels):,} train / {val:,} val / {len(d.test):,} test images; "
        f"{s.device.type}, {c.precision}; {s.steps_per_epoch} steps of {c.batch_size} per epoch, "
        + (
            "as many as the budget affords"
            if s.total_steps >= UNBOUNDED_STEPS
            else f"{s.epochs} epochs, {s.total_steps:,} steps"
        )
        + f", {where}"
        + (
            f"; time budget {c.time_budget:g} s: the length is sized to it after a probe"
            if c.time_budget
            else ""
        )
    )


def _stopped_by(s: Setup, pos: Position, sizer: Sizer | None) -> str:
    """What ended the run: its epochs, its max_steps, or its time budget."""
    epochs, total = length(s.config, s.steps_per_epoch)
    if sizer is not None and pos.step < total:
        return "time budget"
    if s.config.max_steps and (not s.config.epochs or total == s.config.max_steps):
        return "max_steps"
    return "epochs"


def _finish(
    s: Setup, run: RunDir, pos: Position, display: ProgressDisplay, sizer: Sizer | None
) -> TrainResult:
    _sync_norms(s)
    test = _evaluate(s, s.test_loader)
    final = (s.ema.module if s.ema is not None else s.model).eval()
    if not s.world.is_main:
        return TrainResult(run.path, {"test_acc": test.top1}, final)
    meta = {"config": s.config.to_dict(), "data": s.data_meta()}
    save_weights(run.weights, final.state_dict(), meta)
    rows = run.read_metrics()
    summary = {
        "model": s.config.model,
        "dataset": s.data.name,
        "params": count_params(s.model),
        "epochs": pos.epoch,
        "steps": pos.step,
        "best_epoch": pos.best_epoch,
        "best_val_acc": pos.best_val_acc if pos.best_val_acc >= 0 else None,
        "test_loss": test.loss,
        "test_acc": test.top1,
        "test_top5": test.top5,
        "wall_time_s": round(pos.wall_time_s, 3),
        "images_per_s": rows[-1]["images_per_s"] if rows else None,
        "device": str(s.device),
        "torch": torch.__version__,
        "precision": s.config.precision,
        "stopped_by": _stopped_by(s, pos, sizer),
    }
    if sizer is not None:  # the whole command up to here; writing this file is all that is left
        summary.update(time_budget_s=s.config.time_budget, budget_spent_s=sizer.budget.spent())
    run.write_summary(summary)
    budget = (
        f", stopped by {summary['stopped_by']} ({summary['budget_spent_s']:.1f} s of the "
        f"{s.config.time_budget:g} s budget spent)"
        if sizer is not None
        else ""
    )
    display.message(
        f"test accuracy {100 * test.top1:.2f}% (top-5 {100 * test.top5:.2f}%, "
        f"loss {test.loss:.4f}) after {pos.step} steps{budget}; run directory: {run.path}"
    )
    return TrainResult(run.path, summary, final)


def _sizer(s: Setup, pos: Position, started: float) -> Sizer | None:
    c = s.config
    if not c.time_budget:
        return None
    return Sizer(
        Budget(c.time_budget, started, pos.budget_spent_s),
        steps_per_epoch=s.steps_per_epoch,
        batch_size=c.batch_size,
        cap=length(c, s.steps_per_epoch)[1],
        val_images=len(s.val_loader.labels) if s.val_loader is not None else 0,
        test_images=len(s.test_loader.labels),
        tta=c.tta,
    )


def _run(s: Setup, run: RunDir, pos: Position, meter_state, live, quiet, should_stop, started):
    main = s.world.is_main
    # Other ranks stay silent; with several ranks the bar would need a collective per refresh.
    display = ProgressDisplay(
        s.epochs,
        enabled=False if s.world.enabled else live,
        quiet=quiet or not main,
        batch_size=s.config.batch_size,
    )
    display.header(_header(s, pos))
    writer = _tensorboard(run) if main and s.config.tensorboard else None
    sizer = _sizer(s, pos, started)
    try:
        pos = Trainer(s, run, display, should_stop, writer, sizer).fit(pos, meter_state)
        result = _finish(s, run, pos, display, sizer)
        # Rank 0 writes the run's files after the last collective while the others are done:
        # meet before closing the connections, or a rank that tears its group down first can
        # make gloo abort a peer that is still connected (seen once under torchrun restarts).
        distributed.barrier(s.world)
        return result
    finally:
        if writer is not None:
            writer.close()
        distributed.shutdown()


def fit(
    config: TrainConfig,
    out: str | Path,
    *,
    force: bool = False,
    live: bool | None = None,
    quiet: bool = False,
    should_stop: Callable[[int], bool] | None = None,
    started: float | None = None,
) -> TrainResult:
    """Train from scratch into the run directory `out`. A --time-budget counts from `started`
    (a `reslab.train.budget.clock()` reading; default: now)."""
    started = clock() if started is None else started
    config.validate()
    # `--precision auto` becomes this machine's choice, recorded so that a resume keeps it.
    device = resolve_device(config.device)
    config = dataclasses.replace(config, precision=resolve_precision(config.precision, device))
    world = distributed.from_env()
    if world.is_main:
        RunDir.check(out, force)
    seed_everything(config.seed, config.deterministic)
    s = build(config, world)
    run = RunDir.create(out, force) if world.is_main else RunDir(out)
    if world.is_main:
        run.write_config(config.to_dict())
    return _run(s, run, Position(), None, live, quiet, should_stop, started)


def resume(
    out: str | Path,
    overrides: dict | None = None,
    *,
    live: bool | None = None,
    quiet: bool = False,
    should_stop: Callable[[int], bool] | None = None,
    started: float | None = None,
) -> TrainResult:
    """Continue the run in `out` from its last checkpoint, exactly where it stopped.

    A run killed before its first checkpoint starts over from step 0 with its own config (so a
    job script may always resume, as on preemptible machines); a finished run is left as it is
    (`TrainResult.finished_before` is True), unless new `epochs` or `max_steps` extend it."""
    started = clock() if started is None else started
    run = RunDir.open(out)
    overrides = dict(overrides or {})
    fixed = sorted(set(overrides) - set(RESUME_OVERRIDABLE))
    if fixed:
        raise ConfigError(
            f"cannot change {', '.join(fixed)} when resuming; only "
            f"{', '.join(RESUME_OVERRIDABLE)} may change"
        )
    if run.summary.is_file() and not {"epochs", "max_steps"} & set(overrides):
        return _finished_before(run)  # (a new --epochs or --max-steps extends it instead)
    if not run.last.is_file():
        log.info(f"note: {run.path} has no checkpoint yet; starting its run over from step 0")
        config = saved_config(read_toml(run.config), overrides)
        return fit(
            config,
            run.path,
            force=True,
            live=live,
            quiet=quiet,
            should_stop=should_stop,
            started=started,
        )
    state = load_checkpoint(run.last)
    config = saved_config(state["config"], overrides)
    seed_everything(config.seed, config.deterministic)
    s = build(config, distributed.from_env(), fresh=False)
    pos, meter_state = _restore(s, state)
    if s.world.is_main:
        run.truncate_metrics(pos.epoch)
        run.write_config(config.to_dict())
    return _run(s, run, pos, meter_state, live, quiet, should_stop, started)


def _finished_before(run: RunDir) -> TrainResult:
    """A finished run, read back: its summary and final model; nothing is written."""
    summary = json.loads(run.summary.read_text())
    weights, meta = load_weights(run.weights)
    config, data = saved_config(meta["config"]), meta["data"]
    model = build_model(config, len(data["classes"]), data["in_channels"], data["image_size"])
    model.load_state_dict(weights)
    return TrainResult(run.path, summary, model.eval(), finished_before=True)


def fit_restartable(
    config: TrainConfig,
    out: str | Path,
    *,
    force: bool = False,
    quiet: bool = False,
    started: float | None = None,
) -> TrainResult:
    """`fit`, as `reslab train` runs it: safe under `torchrun --max-restarts`. A worker that
    torchrun started again continues the run from its last checkpoint (the checkpoint's config
    is the one this command gave), or starts it over when it failed before the first one."""
    if distributed.restarted():
        if RunDir(out).last.is_file():
            return resume(out, quiet=quiet, started=started)
        force = True
    return fit(config, out, force=force, quiet=quiet, started=started)
