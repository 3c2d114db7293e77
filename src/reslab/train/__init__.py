"""Training: the typed config, recipes, optimizers, schedules, checkpoints and the loop."""

from reslab.train.config import TrainConfig, build_config, compose_config
from reslab.train.engine import TrainResult, fit, fit_restartable, resume
from reslab.train.recipes import RECIPES, get_recipe

__all__ = [
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
