"""Measurements an experiment takes while its runs train, along the trajectory: at the start
and at evenly spaced steps of the run, a function of the model and a fixed batch of the run's
own training images (drawn by its seed), written as one row per step to the run directory's
probes.jsonl. The loop calls them between steps (`reslab.train.engine.Probe`); they leave the
model as they found it, so a probed run trains as it would unprobed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from reslab.data import DeviceLoader, holdout, load_dataset
from reslab.run.config import TrainConfig
from reslab.run.directory import RunDir

# (model, as the loop trains it, images, labels, the run's config) -> a row of numbers (JSON)
Measure = Callable[[nn.Module, torch.Tensor, torch.Tensor, TrainConfig], dict]


@dataclass(frozen=True)
class ProbeSpec:
    """What a run measures as it trains, and how often."""

    measure: Measure  # a module-level function, so that a worker process can take it
    points: int  # measurements spread evenly over the run, besides the one at its start
    images: int = 0  # how many of the run's training images it measures on; 0: a batch

    def start(self, config: TrainConfig, run_dir: str | Path) -> RunProbe:
        return RunProbe(self, config, RunDir(run_dir).probes)


class RunProbe:
    """A `ProbeSpec` at work in one run: `reslab.train.engine.Probe`."""

    def __init__(self, spec: ProbeSpec, config: TrainConfig, path: Path):
        self.spec, self.config, self.path = spec, config, path
        data = load_dataset(config.dataset, config.data_dir or None)
        train, _ = holdout(data, config.val_split, config.seed)
        # Drawn by the run's seed: a split can be ordered by class (an image folder is).
        chosen = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed))
        batch = train.subset(chosen[: spec.images or config.batch_size].sort().values)
        # No augmentation: the same images, as they are, at every measurement.
        loader = DeviceLoader(batch, batch_size=len(batch), mean=data.mean, std=data.std,
                              train=False)  # fmt: skip
        self.x, self.y = next(iter(loader))

    def due(self, step: int, total_steps: int) -> bool:
        return step % max(1, total_steps // self.spec.points) == 0

    def measure(self, model: nn.Module, step: int) -> None:
        device = next(model.parameters()).device
        row = self.spec.measure(model, self.x.to(device), self.y.to(device), self.config)
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **row}) + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_probes(run_dir: str | Path) -> list[dict]:
    """A run's measurements, one row per step in step order. A resumed run measures again the
    steps after its checkpoint: the last row of a step is the one its trajectory went on from;
    a line cut short by a crash is skipped."""
    path = RunDir(run_dir).probes
    rows = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        rows[row["step"]] = row
    return [rows[step] for step in sorted(rows)]
