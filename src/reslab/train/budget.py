"""Training to a wall-clock budget (`--time-budget 10m`).

A schedule set in epochs and cut by a clock leaves the model at a high learning rate; budget-aware
schedules that land at the end of their schedule at the deadline do better (Li et al., ICLR 2020,
"Budgeted Training"). A budgeted run measures its own speed and sizes its length in steps to
the time left; every schedule is a function of the fraction of that length done, so the run
lands at the end of its schedule whatever the machine's speed or load:

- the budget counts the whole command: from the process's start (the CLI) or the call (`fit`),
  through data loading, compilation, training, validation and the final evaluation;
- a probe: the first steps run at the schedule's start; once PROBE_SECONDS of steps (after the
  first WARMUP_STEPS, which pay for compilation and autotuning) are timed, the length is set;
- re-fits: at every check point (--check-every steps) and checkpoint the length is fitted again
  to the time left, from the speed measured since the last fit, and saved with the checkpoint;
- what is reserved: the evaluations still to come (each epoch's validation, the final test, with
  test-time augmentation if on), from one batch of made-up images timed through the evaluation
  before training and from each validation once it has run (estimated from the training speed
  where neither was timed), the saves, and a margin: MARGIN of the budget, at least MARGIN_S
  seconds (the final test pass alone varies by seconds from run to run on a busy CPU, more
  than 1% of a short budget: docs/speed.md);
- with --epochs or --max-steps as well, whichever ends first ends the run; the summary says which.

The loop asks a budget at named points (`stepped`, `refit`, `evaluated`, `saved`); a run without
one asks `NO_BUDGET`, whose answers change nothing.

What a budgeted run promises: it resumes exactly from its checkpoint (weights, optimizer, data
order, step and length), keeping the budget it had already spent; but where its length is next
re-fitted depends on the clock, so two budgeted runs are not bit-identical, unlike runs of a
fixed length (docs/reliability.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from reslab.run.length import Length

WARMUP_STEPS = 2  # untimed: compilation, cuDNN's search, caches
PROBE_SECONDS = 3.0  # training time timed before the first sizing
PROBE_FRACTION = 0.02  # ... or this fraction of the budget, if smaller
MARGIN = 0.01  # of the budget, kept free for what no estimate covers ...
MARGIN_S = 3.0  # ... and never less than this many seconds
AFTER_S = 2.0  # writing the weights, the summary and the CLI's report after the final evaluation
EVAL_COST = 0.4  # time per image of an evaluation pass against a training step, if not measured


def clock() -> float:
    """The budget's clock (seconds; monotonic)."""
    return time.perf_counter()


def margin(seconds: float) -> float:
    """Seconds of a budget of `seconds` kept free for what no estimate covers."""
    return max(MARGIN * seconds, MARGIN_S)


def each_step_one(first: int, last: int, total: int) -> float:
    """The cost of steps first..last-1 where every step costs the same: their number."""
    return last - first


class NoBudget:
    """A run without a time budget: its length is what epochs and max_steps say."""

    budgeted = False

    def stepped(self, step: int) -> None:
        pass

    def refit(self, step: int) -> None:
        pass

    def evaluated(self, seconds: float, images: int) -> None:
        pass

    def saved(self, seconds: float) -> None:
        pass

    def spent(self) -> float:
        return 0.0

    def left(self) -> float | None:
        return None  # no budget: nothing to count down


NO_BUDGET = NoBudget()


class TimeBudget:
    """Fits a budgeted run's length to the time left. `training_s()` reads the run's training
    time so far (steps only, evaluations and saves excluded). With several processes each times
    its own steps: `agree_any` makes the probe end at the same step on all of them (True on all
    if True on any) and `agree_min` makes one length of their fits."""

    budgeted = True

    def __init__(
        self,
        seconds: float,
        started: float,
        length: Length,
        training_s: Callable[[], float],
        *,
        spent_before: float = 0.0,
        batch_size: int,
        evaluated_images: tuple[int, int],  # (each validation's, the final test's) images
        eval_passes: int = 1,  # forward passes per evaluated image: the TTA views
        # What steps first..last-1 of a run of `total` cost, in full-size steps (progressive
        # resizing makes early steps cheaper); by default each step costs one.
        cost: Callable[[int, int, int], float] | None = None,
        agree_any: Callable[[bool], bool] = lambda flag: flag,
        agree_min: Callable[[int], int] = lambda n: n,
    ):
        self.seconds, self.started, self.spent_before = seconds, started, spent_before
        self.length, self.training_s = length, training_s
        self.cost = cost or each_step_one
        self.agree_any, self.agree_min = agree_any, agree_min
        self.batch_size, self.eval_passes = batch_size, eval_passes
        self.val_images, self.test_images = evaluated_images
        self.sized = False
        self.first_step: int | None = None  # this session's first step
        self.mark: tuple[int, float] | None = None  # (step, training time) the speed is from
        self.step_s: float | None = None  # measured seconds per step (of full cost)
        self.eval_s_per_image: float | None = None  # measured, once an evaluation has run
        self.save_s = 0.0  # the longest save seen

    def spent(self, now: float | None = None) -> float:
        return self.spent_before + (clock() if now is None else now) - self.started

    def left(self, now: float | None = None) -> float:
        return self.seconds - self.spent(now)

    def stepped(self, step: int) -> None:
        """After every step until the run is sized: the probe. Past the warm-up, time steps
        until enough of them are timed, then size the run."""
        if self.sized:
            return
        if self.first_step is None:
            self.first_step = step - 1
        done = step - self.first_step
        if done == WARMUP_STEPS:  # compilation and autotuning are behind: start timing
            self.mark = (step, self.training_s())
        elif done > WARMUP_STEPS and self.agree_any(self._probe_done(step)):
            self._fit_now(step)

    def _probe_done(self, step: int) -> bool:
        goal = min(PROBE_SECONDS, PROBE_FRACTION * self.seconds)
        mark_step, mark_s = self.mark
        return step - mark_step >= 3 and self.training_s() - mark_s >= goal

    def refit(self, step: int) -> None:
        """Once the probe has sized the run: fit its length to the time left again (at check
        points and before checkpoints), from the speed since the last fit."""
        if self.sized:
            self._fit_now(step)

    def _fit_now(self, step: int) -> None:
        now_s = self.training_s()
        if step > self.mark[0] and now_s > self.mark[1]:  # steps run under the length before
            done = self.cost(self.mark[0], step, self.length.total_steps)
            self.step_s = (now_s - self.mark[1]) / done
        self.mark = (step, now_s)
        self.sized = True
        if step >= self.length.total_steps:
            # Landed at the end of the schedule (the epoch-end save comes after the last step):
            # time left over is not turned into more steps, which would raise the lr again.
            return
        self.length.resize(self.agree_min(self.fit(step)))

    def evaluated(self, seconds: float, images: int) -> None:
        """An evaluation of `images` images (each with its test-time augmentation) took
        `seconds`: what each one still to come will cost."""
        self.eval_s_per_image = seconds / images if images else None

    def saved(self, seconds: float) -> None:
        self.save_s = max(self.save_s, seconds)

    def reserve(self, step: int, total: int) -> float:
        """Seconds the rest of the run needs besides its training steps."""
        per_image = self.eval_s_per_image
        if per_image is None:
            per_image = EVAL_COST * self.eval_passes * (self.step_s or 0.0) / self.batch_size
        spe = self.length.steps_per_epoch
        epoch_ends = max(0, math.ceil(total / spe) - step // spe)
        evals = epoch_ends * self.val_images + self.test_images
        saves = (epoch_ends + 1) * self.save_s
        return per_image * evals + saves + AFTER_S + margin(self.seconds)

    def fit(self, step: int, now: float | None = None) -> int:
        """The run's new length in steps: the most the time left affords, its steps and the
        rest still to come (the reserve, which grows with the length: more epoch ends) together,
        within the cap, and never fewer than done. Both grow with the length (with progressive
        resizing too: one more step moves each part's end by at most a step, which saves less
        than the full-size step it adds costs), so the longest that fits is found by
        bisection."""
        if not self.step_s:
            return self.length.cap
        left = self.left(now)

        def fits(total: int) -> bool:
            return self.cost(step, total, total) * self.step_s + self.reserve(step, total) <= left

        low, high = step, self.length.cap
        if fits(high):
            return high
        if not fits(low):
            return step
        while high - low > 1:  # fits(low), not fits(high)
            mid = (low + high) // 2
            low, high = (mid, high) if fits(mid) else (low, mid)
        return low
