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
  test-time augmentation if on), timed once they have run and estimated from the training speed
  before, the saves, and a margin of MARGIN of the budget;
- with --epochs or --max-steps as well, whichever ends first ends the run; the summary says which.

What a budgeted run promises: it resumes exactly from its checkpoint (weights, optimizer, data
order, step and length), keeping the budget it had already spent; but where its length is next
re-fitted depends on the clock, so two budgeted runs are not bit-identical, unlike runs of a
fixed length (docs/reliability.md).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from reslab.errors import ConfigError

WARMUP_STEPS = 2  # untimed: compilation, cuDNN's search, caches
PROBE_SECONDS = 3.0  # training time timed before the first sizing
PROBE_FRACTION = 0.02  # ... or this fraction of the budget, if smaller
MARGIN = 0.01  # of the budget, kept free for what no estimate covers
AFTER_S = 2.0  # writing the weights, the summary and the CLI's report after the final evaluation
EVAL_COST = 0.4  # time per image of an evaluation pass against a training step, before measured

_UNITS = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, "": 1.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|min|m|s|)")


def parse_duration(text: str | float | int) -> float:
    """Seconds in "90s", "10m", "1h", "1h30m", "2.5m" or a plain number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip().lower()
    parts, pos = [], 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m or not m.group(0):
            parts = []
            break
        parts.append(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
        while pos < len(s) and s[pos] == " ":
            pos += 1
    if not parts:
        raise ConfigError(
            f"time_budget: cannot read {text!r} as a duration; write e.g. 90s, 10m, 1h30m or a "
            "number of seconds"
        )
    return sum(parts)


def clock() -> float:
    """The budget's clock (seconds; monotonic)."""
    return time.perf_counter()


@dataclass
class Budget:
    """The budget of one run: its size, when this session started, what earlier sessions of
    the run spent."""

    seconds: float
    started: float
    spent_before: float = 0.0

    def spent(self, now: float | None = None) -> float:
        return self.spent_before + (clock() if now is None else now) - self.started

    def left(self, now: float | None = None) -> float:
        return self.seconds - self.spent(now)


@dataclass
class Sizer:
    """Fits a budgeted run's length (total steps) to the time left."""

    budget: Budget
    steps_per_epoch: int
    batch_size: int
    cap: int  # the length epochs/max_steps allow: the run never goes beyond it
    val_images: int
    test_images: int
    tta: bool
    sized: bool = False
    mark_step: int = 0  # where the current speed measurement began
    mark_time: float = 0.0
    training_s: float = 0.0  # training time since the mark (excludes evaluations and saves)
    step_s: float | None = None  # measured seconds per step
    eval_s_per_image: float | None = None  # measured, once an evaluation has run
    save_s: float = 0.0  # the longest save seen

    def start(self, step: int) -> None:
        self.mark_step, self.training_s = step, 0.0

    def add_training(self, seconds: float) -> None:
        self.training_s += seconds

    def probe_done_at(self, step: int, pending_s: float) -> bool:
        """Whether enough steps past the warm-up are timed to size the run (`pending_s`: time
        of steps not yet added)."""
        goal = min(PROBE_SECONDS, PROBE_FRACTION * self.budget.seconds)
        return step - self.mark_step >= 3 and self.training_s + pending_s >= goal

    def measure(self, step: int) -> None:
        if step > self.mark_step and self.training_s > 0:
            self.step_s = self.training_s / (step - self.mark_step)
        self.start(step)

    def reserve(self, step: int, total: int) -> float:
        """Seconds the rest of the run needs besides its training steps."""
        per_image = self.eval_s_per_image
        if per_image is None:
            per_image = EVAL_COST * (self.step_s or 0.0) / self.batch_size
        epoch_ends = max(0, math.ceil(total / self.steps_per_epoch) - step // self.steps_per_epoch)
        evals = epoch_ends * self.val_images + self.test_images * (2 if self.tta else 1)
        saves = (epoch_ends + 1) * self.save_s
        return per_image * evals + saves + AFTER_S + MARGIN * self.budget.seconds

    def fit(self, step: int, now: float | None = None) -> int:
        """The run's new length in steps: as many as the time left affords, within the cap,
        and never fewer than done."""
        self.sized = True
        if not self.step_s:
            return self.cap
        left = self.budget.left(now)
        total = self.cap
        for _ in range(3):  # the reserve depends on the length (epoch ends): settle it
            affordable = (left - self.reserve(step, total)) / self.step_s
            total = min(self.cap, step + max(0, math.floor(affordable)))
        return max(step, total)
