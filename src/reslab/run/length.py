"""How long a run is: the one owner of what `epochs`, `max_steps` and `time_budget` mean
together, from the config's layers to the loop's last step.

- A config needs at least one limit: epochs, max_steps or a time budget.
- A layer of settings that sets only one of epochs and max_steps means that length: the other
  one, if a lower layer set it, is cleared (`--epochs 300` over a 64k-step recipe trains 300
  epochs).
- With both, the first limit reached ends the run; with neither (a time budget alone) the length
  is the budget's to size, within UNBOUNDED_STEPS.
- Without epochs the step count alone ends the run: a run cut by max_steps in mid-epoch has
  counted that epoch, and a larger max_steps on resume goes on from there.
- A time budget re-sizes the run as it goes, never beyond what epochs and max_steps allow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from reslab.errors import ConfigError

LIMITS = ("epochs", "max_steps")  # the keys that fix a run's length; a resume may extend them
UNBOUNDED_STEPS = 10**9  # a time budget alone: the length is the budget's to size


class Limits(Protocol):
    epochs: int
    max_steps: int
    time_budget: float


def merge(values: dict[str, object], layer: Mapping[str, object]) -> None:
    """Lay `layer` over `values`: setting one of the length keys alone clears the other."""
    for key, other in (LIMITS, LIMITS[::-1]):
        if key in layer and other not in layer:
            values[other] = 0
    values.update(layer)


def check_limits(config: Limits) -> None:
    if not (config.epochs > 0 or config.max_steps > 0 or config.time_budget > 0):
        raise ConfigError(
            f"epochs: bad value {config.epochs!r}; expected an integer >= 1, or set max_steps "
            "or time_budget"
        )


@dataclass
class Length:
    """A run's length now. The schedule reads `total_steps` at every step; a time budget changes
    it through `resize`; the loop asks `finished` and `ends_epoch`."""

    steps_per_epoch: int
    total_steps: int  # steps the run takes, as things stand
    epochs: int  # epochs those steps span
    cap: int  # the steps that epochs and max_steps allow: never exceeded
    by_epochs: bool  # epochs were given: their count ends the run too
    max_steps: int  # as configured (0: none)

    @classmethod
    def of(cls, config: Limits, steps_per_epoch: int) -> Length:
        """The length that epochs and max_steps allow: the first limit reached."""
        max_steps = config.max_steps or (0 if config.epochs else UNBOUNDED_STEPS)
        epochs = config.epochs or math.ceil(max_steps / steps_per_epoch)
        total = epochs * steps_per_epoch
        if max_steps:
            total = min(total, max_steps)
        return cls(steps_per_epoch, total, epochs, total, config.epochs > 0, config.max_steps)

    @property
    def unbounded(self) -> bool:
        return self.cap >= UNBOUNDED_STEPS

    def finished(self, step: int, epoch: int) -> bool:
        return step >= self.total_steps or (self.by_epochs and epoch >= self.epochs)

    def ends_epoch(self, step: int, batch: int) -> bool:
        """Whether the step just taken is its epoch's last: the epoch is full, or the run is."""
        return batch >= self.steps_per_epoch or step >= self.total_steps

    def epoch_steps(self, step: int, batch: int) -> int:
        """Steps the epoch now at `batch` (overall step `step`) will have: a full epoch, or
        fewer where the run ends inside it."""
        return min(self.steps_per_epoch, batch + self.total_steps - step)

    def resize(self, total: int) -> None:
        self.total_steps = min(self.cap, total)
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)

    def stopped_by(self, step: int, budgeted: bool) -> str:
        """What ended a run that stopped at `step`: its epochs, its max_steps or its time budget."""
        if budgeted and step < self.cap:
            return "time budget"
        if self.max_steps and (not self.by_epochs or self.cap == self.max_steps):
            return "max_steps"
        return "epochs"

    def state_dict(self) -> dict[str, int]:
        return {"epochs": self.epochs, "total_steps": self.total_steps}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.epochs, self.total_steps = int(state["epochs"]), int(state["total_steps"])
