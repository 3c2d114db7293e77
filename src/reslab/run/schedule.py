"""What the config's `schedule` names mean: learning-rate schedules as pure functions of the
step, wrapped in a LambdaLR; and the image-size schedule of progressive resizing.

A pure function keeps resume exact: the scheduler's whole state is its step count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch


class Settings(Protocol):
    """The config keys a schedule is built from."""

    schedule: str
    milestones: list[float]
    step_size: float
    gamma: float
    warmup_epochs: float


Factor = Callable[[float], float]  # fraction of the run after warmup (0..1) -> lr multiplier


def _onecycle(t: float) -> float:
    # Rise for the first 30% then anneal to near zero, as torch's OneCycleLR with cos annealing.
    peak = 0.3
    if t < peak:
        return 0.04 + 0.96 * (1 - math.cos(math.pi * t / peak)) / 2
    return 1e-4 + (1 - 1e-4) * (1 + math.cos(math.pi * (t - peak) / (1 - peak))) / 2


# name -> the schedule's shape, given the config (for its milestones, gamma and step size).
SCHEDULES: dict[str, Callable[[Settings], Factor]] = {
    "constant": lambda c: lambda t: 1.0,
    "step": lambda c: lambda t: c.gamma ** math.floor(t / c.step_size + 1e-9),
    "multistep": lambda c: lambda t: c.gamma ** sum(t >= m for m in c.milestones),
    "cosine": lambda c: lambda t: (1 + math.cos(math.pi * min(t, 1.0))) / 2,
    "onecycle": lambda c: _onecycle,
    "linear": lambda c: lambda t: max(0.0, 1 - t),
}


def lr_factor(
    config: Settings, total_steps: int | Callable[[], int], steps_per_epoch: int
) -> Callable[[int], float]:
    """The lr multiplier at each step: linear warmup, then the schedule's shape. `total_steps`
    may be a function, read at every step: a run sized to a time budget changes its length."""
    warmup = round(config.warmup_epochs * steps_per_epoch)
    shape = SCHEDULES[config.schedule](config)
    total = total_steps if callable(total_steps) else lambda: total_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return shape((step - warmup) / max(1, total() - warmup))

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    config: Settings,
    total_steps: int | Callable[[], int],
    steps_per_epoch: int,
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(config, total_steps, steps_per_epoch)
    )


def progressive_part(sizes: list[int], step: int, total_steps: int, reached: int = 0) -> int:
    """Progressive resizing: the part of the run (0 .. len(sizes), the last at full size) that
    the step after `step` steps of `total_steps` belongs to, of len(sizes) + 1 equal parts;
    never below `reached`, the part the run is already in: a time budget that lengthens the run
    moves the parts' ends later, but a run that has moved to larger images stays there."""
    parts = len(sizes) + 1
    return max(reached, min(parts - 1, parts * step // max(1, total_steps)))


def image_size_at(sizes: list[int], step: int, total_steps: int, reached: int = 0) -> int | None:
    """Progressive resizing: the image size (shorter side) of the step after `step` steps of
    `total_steps` (`progressive_part`): sizes[i] for the i-th part, None (the data's own size)
    for the last part and for a run without sizes."""
    if not sizes:
        return None
    return part_size(sizes, progressive_part(sizes, step, total_steps, reached))


def part_size(sizes: list[int], part: int) -> int | None:
    """The image size of a part of a progressive run: None (the data's own) for the last."""
    return sizes[part] if part < len(sizes) else None


def progressive_cost(sizes: list[int], full: int) -> Callable[..., float]:
    """What steps first.. last - 1 (0-based) of a run of `total` steps cost in full-size steps,
    taking a step's cost as its pixels' share of the full size's: a time budget prices the
    steps done and those still to come with it. `switches` are the steps at which the run
    moved to each later part so far and `now` the steps done: a step before `now` was in the
    part the switches say, a later one is in `progressive_part` of `total`, never below the
    part reached. Convolutions' work is in proportion to the pixels; what is not (a step's
    fixed overhead) makes small steps dearer than this, so a speed measured on small images
    overstates what the full-size ones will take, and the run ends early rather than late."""
    shares = [(size / full) ** 2 for size in sizes] + [1.0]
    parts = len(shares)

    def cost(first: int, last: int, total: int, switches: tuple = (), now: int = 0) -> float:
        total, reached = max(1, total), len(switches)
        starts = [-(-k * total // parts) for k in range(parts)]  # step k of progressive_part
        spans = [  # (first step, end, part): the steps done, then those to come
            *zip([0, *switches], [*switches, now], range(reached + 1), strict=True),
            *(
                (max(now, start), end, max(k, reached))
                for k, (start, end) in enumerate(zip(starts, [*starts[1:], math.inf], strict=True))
            ),
        ]
        return sum(
            shares[part] * max(0, min(last, end) - max(first, start)) for start, end, part in spans
        )

    return cost
