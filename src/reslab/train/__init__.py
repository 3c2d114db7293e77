"""Training: the typed config, recipes, optimizers, schedules, checkpoints and the loop."""

from reslab.train.config import TrainConfig, build_config
from reslab.train.engine import TrainResult, resume, train
from reslab.train.evaluate import EvalResult, evaluate
from reslab.train.load import LoadedModel, load
from reslab.train.recipes import RECIPES, get_recipe

__all__ = [
    "RECIPES",
    "EvalResult",
    "LoadedModel",
    "TrainConfig",
    "TrainResult",
    "build_config",
    "evaluate",
    "get_recipe",
    "load",
    "resume",
    "train",
]
