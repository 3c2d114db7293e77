"""Experiments: grids of ordinary training runs, and reports that test published claims."""

from reslab.experiments import batchnorm, degradation, gradients, optimizers, placement, why_bn
from reslab.experiments.runner import ExperimentResults, run_experiment
from reslab.experiments.spec import BUDGETS, Budget, Experiment, RunSpec, get_budget

EXPERIMENTS = {
    e.EXPERIMENT.name: e.EXPERIMENT
    for e in (batchnorm, degradation, optimizers, gradients, placement, why_bn)
}

from reslab.experiments.conduct import ExperimentReport, conduct  # noqa: E402

__all__ = [
    "BUDGETS",
    "EXPERIMENTS",
    "Budget",
    "Experiment",
    "ExperimentReport",
    "ExperimentResults",
    "RunSpec",
    "conduct",
    "get_budget",
    "run_experiment",
]
