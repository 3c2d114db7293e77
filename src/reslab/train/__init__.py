"""Training: recipes, the setup of a run, the training loop, time budgets and several processes.
What a run is (its config, directory, checkpoints) is `reslab.run`'s."""

from reslab.run.config import TrainConfig, build_config
from reslab.train.recipes import DEFAULT_RECIPE, RECIPES, compose_config, get_recipe
from reslab.train.session import TrainResult, fit, fit_restartable, resume

__all__ = [
    "DEFAULT_RECIPE",
    "RECIPES",
    "TrainConfig",
    "TrainResult",
    "build_config",
    "compose_config",
    "fit",
    "fit_restartable",
    "get_recipe",
    "resume",
]
