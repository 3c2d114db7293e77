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


def image_size_at(sizes: list[int], step: int, total_steps: int) -> int | None:
    """Progressive resizing: the image size (shorter side) of the step after `step` steps of
    `total_steps`: sizes[i] for the i-th of len(sizes) + 1 equal parts of the run, None (the
    data's own size) for the last part and for a run without sizes."""
    if not sizes:
        return None
    part = (len(sizes) + 1) * step // max(1, total_steps)
    return sizes[part] if part < len(sizes) else None


def progressive_cost(sizes: list[int], full: int) -> Callable[[int, int, int], float]:
    """What steps first.. last - 1 (0-based) of a run of `total` steps cost in full-size steps,
    taking a step's cost as its pixels' share of the full size's: a time budget prices the
    steps still to come with it. Convolutions' work is in proportion to the pixels; what is
    not (a step's fixed overhead) makes small steps dearer than this, so a speed measured on
    small images overstates what the full-size ones will take, and the run ends early rather
    than late."""
    shares = [(size / full) ** 2 for size in sizes] + [1.0]
    parts = len(shares)

    def cost(first: int, last: int, total: int) -> float:
        total = max(1, total)
        starts = [-(-k * total // parts) for k in range(parts + 1)]  # step k of image_size_at
        return sum(
            share * max(0, min(last, end) - max(first, start))
            for share, start, end in zip(shares, starts, starts[1:], strict=False)
        )

    return cost
