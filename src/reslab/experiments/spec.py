"""What an experiment is: a grid of ordinary training runs, a budget, and an analysis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from reslab.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    name: str
    dataset: str
    epochs: int  # length of every main run
    overrides: dict  # config keys common to every run at this budget
    depths: tuple[int, ...]  # depths of the degradation experiment
    target_acc: float  # validation accuracy that counts as "reached" for steps-to-target
    note: str


BUDGETS = {
    b.name: b
    for b in (
        Budget(
            "quick",
            "cifar10-sample",
            5,
            dict(
                batch_size=128,
                val_split=500,
                schedule="constant",
                threads=0,
                check_every=10,
                crop_padding=4,
                flip=True,
            ),
            (20, 32, 44, 56),
            0.30,
            "the shipped 4k-image sample, 5 epochs per run: about ten minutes on 2 CPU cores; "
            "early training only",
        ),
        Budget(
            "standard",
            "cifar10",
            30,
            dict(batch_size=128, val_split=5000, schedule="cosine"),
            (20, 32, 44, 56),
            0.80,
            "full CIFAR-10, 30 epochs per run (a GPU makes this minutes per run)",
        ),
        Budget(
            "paper",
            "cifar10",
            182,
            dict(
                batch_size=128,
                val_split=5000,
                schedule="multistep",
                milestones=[0.5, 0.75],
                weight_decay=1e-4,
            ),
            (20, 32, 44, 56, 110),
            0.90,
            "He et al. 2015 protocol: 64k iterations (182 epochs of 45k), lr /10 at 32k, 48k",
        ),
    )
}


@dataclass(frozen=True)
class RunSpec:
    name: str  # unique within the experiment; the run directory's name
    overrides: dict  # config keys of this run, over the budget's
    group: dict = field(default_factory=dict)  # labels for analysis, e.g. {"norm": "none"}


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    summary: str  # "{model}" in it names the network the grid trains
    runs: Callable[..., list[RunSpec]]  # the grid: (budget), or (budget, model) with a model
    analyze: Callable  # (ExperimentResults, out_dir) -> list[Section]
    # The network trained when the claims are not tied to one architecture (then --model may
    # name another); None for experiments whose grid is a fixed set of architectures.
    model: str | None = None

    def grid(self, budget: Budget, model: str | None = None) -> list[RunSpec]:
        if self.model is None:
            if model is not None:
                raise ConfigError(
                    f"experiment {self.name} compares fixed architectures and takes no --model"
                )
            return self.runs(budget)
        return self.runs(budget, model or self.model)


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise ConfigError(f"budget: unknown value {name!r}; allowed: {', '.join(BUDGETS)}")
    return BUDGETS[name]
