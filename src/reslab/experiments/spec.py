"""What an experiment is: a grid of ordinary training runs, a budget, and an analysis."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from reslab.errors import ConfigError
from reslab.experiments.probe import ProbeSpec


@dataclass(frozen=True)
class Budget:
    name: str
    dataset: str
    epochs: int  # length of every main run
    overrides: dict  # config keys common to every run at this budget
    depths: tuple[int, ...]  # depths of the degradation experiment
    target_acc: float  # validation accuracy that counts as "reached" for steps-to-target
    note: str
    seeds: int = 1  # repeats of each run unless the user asks for another number
    # Per experiment, where the budget sizes it apart from the rest: its length in epochs, and
    # the network it tests (for the experiments that take one; --model still wins).
    epochs_for: Mapping[str, int] = field(default_factory=dict)
    model_for: Mapping[str, str] = field(default_factory=dict)
    # The depth claims run on the narrow CIFAR nets (half the channels, same depths): the same
    # question at about 70% of the cost on a CPU.
    narrow: bool = False

    def epochs_of(self, experiment: str) -> int:
        return self.epochs_for.get(experiment, self.epochs)


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
            (20, 56),
            0.30,
            "the shipped 4k-image sample, 5 epochs per run, 2 seeds (the fewest that give a "
            "confidence interval), the hour budget's networks (the small CNN for BN and the "
            "optimizers, the narrow nets at depths 20 and 56 for degradation); early training only",
            seeds=2,
            model_for={"batchnorm": "small_cnn", "optimizers": "small_cnn"},
            narrow=True,
        ),
        Budget(
            "hour",
            "cifar10",
            5,
            dict(
                batch_size=128,
                val_split=5000,
                schedule="cosine",
                warmup_epochs=1,
                crop_padding=4,
                flip=True,
            ),
            (20, 56),
            0.60,
            "full CIFAR-10 (45k/5k), cosine schedule with one epoch of warmup, 2 seeds; each "
            "experiment sized to about an hour on 2 CPU cores: degradation on the narrow nets "
            "(8-16-32 channels) at depths 20 and 56 for 5 epochs, BN and the optimizers on the "
            "small CNN (7 and 6 epochs), placement on resnet20 for 6 epochs, why-bn's narrow "
            "VGG for 12 epochs",
            seeds=2,
            epochs_for={"batchnorm": 7, "optimizers": 6, "placement": 6, "why-bn": 12},
            model_for={"batchnorm": "small_cnn", "optimizers": "small_cnn"},
            narrow=True,
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
    probe: ProbeSpec | None = None  # what the run measures as it trains
    # The fewest seeds this run's claims need (cheap runs whose claims need more than the
    # budget's); 0: as many as every run has.
    seeds: int = 0


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

    def network(self, budget: Budget, model: str | None = None) -> str | None:
        """The network the grid trains: the user's, else the budget's, else the experiment's
        own; None for an experiment of fixed architectures."""
        if self.model is None:
            if model is not None:
                raise ConfigError(
                    f"experiment {self.name} compares fixed architectures and takes no --model"
                )
            return None
        return model or budget.model_for.get(self.name) or self.model

    def grid(self, budget: Budget, model: str | None = None) -> list[RunSpec]:
        network = self.network(budget, model)
        specs = self.runs(budget) if network is None else self.runs(budget, network)
        if self.name not in budget.epochs_for:
            return specs
        epochs = {"epochs": budget.epochs_for[self.name]}  # under each run's own keys
        return [dataclasses.replace(s, overrides={**epochs, **s.overrides}) for s in specs]


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise ConfigError(f"budget: unknown value {name!r}; allowed: {', '.join(BUDGETS)}")
    return BUDGETS[name]
