"""A training session: `fit` starts a run, `resume` continues one, `fit_restartable` does
either under torchrun. Each builds the run's parts, hands them to the training loop
(`reslab.train.engine`), then evaluates the final model on the test split once and writes the
run's final files."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from reslab.errors import ConfigError
from reslab.io import plural
from reslab.metrics.evaluation import tta_views
from reslab.models import count_params
from reslab.run.checkpoint import load_checkpoint, save_weights
from reslab.run.config import TrainConfig, read_toml, saved_config
from reslab.run.device import resolve_device, resolve_precision
from reslab.run.directory import RunDir
from reslab.run.length import LIMITS
from reslab.run.schedule import progressive_cost
from reslab.run.weights import resolve
from reslab.train import distributed
from reslab.train.budget import NO_BUDGET, NoBudget, TimeBudget, clock
from reslab.train.engine import (
    NO_PROBE,
    Hooks,
    Position,
    Probe,
    Stopwatch,
    evaluate,
    restore,
    train_loop,
)
from reslab.train.progress import ProgressDisplay
from reslab.train.runtime import seed_everything
from reslab.train.setup import Setup, build
from reslab.train.stopped import StoppedTime

log = logging.getLogger("reslab.train")

# The keys a resumed run may change: how long it runs and where, never what it computes.
RESUME_OVERRIDABLE = (*LIMITS, "device", "threads", "check_every", "checkpoint_every")


@dataclass
class TrainResult:
    """What a finished run returns: where it lives, its summary.json, and the final model."""

    run_dir: Path
    summary: dict  # the content of summary.json: test_acc, test_top5, epochs, wall_time_s, ...
    model: nn.Module  # the final model (the EMA model when --ema is on), in eval mode
    finished_before: bool = False  # resume() found the run already finished and left it


def fit(
    config: TrainConfig,
    out: str | Path,
    *,
    force: bool = False,
    live: bool | None = None,
    quiet: bool = False,
    should_stop: Callable[[int], bool] | None = None,
    started: float | None = None,
    probe: Probe = NO_PROBE,
) -> TrainResult:
    """Train from scratch into the run directory `out`. A --time-budget counts from `started`
    (a `reslab.train.budget.clock()` reading; default: now). `probe` measures the model on the
    way (`reslab.train.engine.Probe`)."""
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
    hooks = _hooks(s, run, live, quiet, should_stop, probe)
    return _run(s, run, Position(), None, hooks, started)


def resume(
    out: str | Path,
    overrides: dict | None = None,
    *,
    live: bool | None = None,
    quiet: bool = False,
    should_stop: Callable[[int], bool] | None = None,
    started: float | None = None,
    probe: Probe = NO_PROBE,
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
    if run.summary.is_file() and not set(LIMITS) & set(overrides):
        return _finished_before(run)  # (a new --epochs or --max-steps extends it instead)
    if not run.last.is_file():
        log.info(f"note: {run.path} has no checkpoint yet; starting its run over from step 0")
        config = saved_config(read_toml(run.config), overrides)
        return fit(config, run.path, force=True, live=live, quiet=quiet,
                   should_stop=should_stop, started=started, probe=probe)  # fmt: skip
    state = load_checkpoint(run.last)
    config = saved_config(state["config"], overrides)
    seed_everything(config.seed, config.deterministic)
    s = build(config, distributed.from_env(), fresh=False)
    pos, meter_state = restore(s, state)
    if s.world.is_main:
        run.truncate_metrics(pos.epoch)
        run.write_config(config.to_dict())
    hooks = _hooks(s, run, live, quiet, should_stop, probe)
    return _run(s, run, pos, meter_state, hooks, started)


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


def _hooks(s: Setup, run: RunDir, live, quiet, should_stop, probe: Probe) -> Hooks:
    main = s.world.is_main
    # Other ranks stay silent; with several ranks the bar would need a collective per refresh.
    display = ProgressDisplay(s.length.epochs, enabled=False if s.world.enabled else live,
                              quiet=quiet or not main, batch_size=s.config.batch_size)  # fmt: skip
    writer = None
    if main and s.config.tensorboard:
        from torch.utils.tensorboard import SummaryWriter  # present: checked by check_runtime

        writer = SummaryWriter(log_dir=str(run.path / "tensorboard"))
    return Hooks(display, should_stop or (lambda step: False), writer, probe)


def _budget(s: Setup, pos: Position, started: float, watch: Stopwatch) -> TimeBudget | NoBudget:
    if not s.config.time_budget:
        return NO_BUDGET
    val = len(s.val_loader.labels) if s.val_loader is not None else 0
    return TimeBudget(
        s.config.time_budget,
        started,
        s.length,
        watch.now,
        spent_before=pos.budget_spent_s,
        batch_size=s.config.batch_size,
        evaluated_images=(val, len(s.test_loader.labels)),
        eval_passes=tta_views(s.config.tta, s.config.tta_shift),
        cost=_progressive_cost(s, pos) if s.config.progressive else None,
        agree_any=lambda flag: s.world.agree(flag, True, s.device),  # every rank, every step
        agree_min=lambda n: s.world.smallest(n, s.device),
    )


def _progressive_cost(s: Setup, pos: Position):
    """The cost of steps under progressive resizing, from the parts the run has been in
    (`pos`, which the loop moves on)."""
    cost = progressive_cost(s.config.progressive, min(s.data.image_size))
    return lambda first, last, total: cost(first, last, total, tuple(pos.switches), pos.step)


def _run(s: Setup, run: RunDir, pos: Position, meter_state, hooks: Hooks, started: float):
    stopped = StoppedTime()
    watch = Stopwatch(pos, s.device, stopped)
    budget = _budget(s, pos, started, watch)
    hooks.display.header(_header(s, pos))
    log.debug(f"config: {json.dumps(s.config.to_dict())}")  # --verbose: every setting, resolved
    try:
        with stopped:
            pos = train_loop(s, run, pos, meter_state, hooks, budget, watch)
        result = _finish(s, run, pos, hooks.display, budget)
        # Rank 0 writes the run's files after the last collective while the others are done:
        # meet before closing the connections, or a rank that tears its group down first can
        # make gloo abort a peer that is still connected (seen once under torchrun restarts).
        s.world.barrier()
        return result
    finally:
        if hooks.writer is not None:
            hooks.writer.close()
        distributed.shutdown()


def _header(s: Setup, pos: Position) -> str:
    c, d, n = s.config, s.data, s.length
    val = len(s.val_loader.labels) if s.val_loader is not None else 0
    where = f"from step {pos.step}" if pos.step else f"from {c.init}" if c.init else "from scratch"
    size = (
        "as many as the budget affords"
        if n.unbounded
        else f"{plural(n.epochs, 'epoch')}, {plural(n.total_steps, 'step')}"
    )
    budget = (
        f"; time budget {c.time_budget:g} s: the length is sized to it after a probe"
        if c.time_budget
        else ""
    )
    return (
        f"{c.model} ({count_params(s.model):,} params, norm {c.norm}) on {d.name}: "
        f"{len(s.train_loader.labels):,} train / {val:,} val / {len(d.test):,} test images; "
        f"{s.device.type}, {c.precision}; {plural(n.steps_per_epoch, 'step')} of {c.batch_size} "
        "per epoch, "
        f"{size}, {where}{budget}"
    )


def _finish(s: Setup, run: RunDir, pos: Position, display, budget) -> TrainResult:
    """The final model on the test split, read once; its weights and the summary written."""
    s.sync_norms()
    test = evaluate(s, s.test_loader)
    final = (s.ema.module if s.ema is not None else s.model).eval()
    if not s.world.is_main:
        return TrainResult(run.path, {"test_acc": test.top1}, final)
    save_weights(run.weights, final.state_dict(), {"config": s.config.to_dict(),
                                                    "data": s.data_meta()})  # fmt: skip
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
        "test_images": len(s.data.test),
        "wall_time_s": round(pos.wall_time_s, 3),
        "images_per_s": rows[-1]["images_per_s"] if rows else None,
        "device": str(s.device),
        "torch": torch.__version__,
        "precision": s.config.precision,
        "stopped_by": s.length.stopped_by(pos.step, budget.budgeted),
    }
    if budget.budgeted:  # the whole command up to here; writing this file is all that is left
        summary.update(time_budget_s=s.config.time_budget, budget_spent_s=budget.spent())
    run.write_summary(summary)
    spent = (
        f", stopped by {summary['stopped_by']} ({summary['budget_spent_s']:.1f} s of the "
        f"{s.config.time_budget:g} s budget spent)"
        if budget.budgeted
        else ""
    )
    top5 = f"top-5 {100 * test.top5:.2f}%, " if s.data.num_classes > 5 else ""
    display.message(
        f"test accuracy {100 * test.top1:.2f}% ({top5}"
        f"loss {test.loss:.4f}) after {plural(pos.step, 'step')}{spent}; run directory: {run.path}"
    )
    return TrainResult(run.path, summary, final)


def _finished_before(run: RunDir) -> TrainResult:
    """A finished run, read back: its summary and final model; nothing is written."""
    summary = json.loads(run.summary.read_text())
    return TrainResult(run.path, summary, resolve(run.weights).build(), finished_before=True)
