"""reslab: build, train and study batch-normalized residual networks.

The Python API in one place: `create_model`, `list_models`, `model_info`, `build_config`,
`train`, `resume`, `evaluate` and `load`.
"""

__version__ = "0.1.0"

from reslab.models import create_model, list_models, model_info  # noqa: E402
from reslab.train.assess import evaluate_saved as evaluate  # noqa: E402
from reslab.train.config import TrainConfig, build_config  # noqa: E402
from reslab.train.engine import (
    resume,  # noqa: E402
    train,  # noqa: E402  (the function shadows the subpackage name)
)
from reslab.train.load import load  # noqa: E402

__all__ = [
    "TrainConfig",
    "__version__",
    "build_config",
    "create_model",
    "evaluate",
    "list_models",
    "load",
    "model_info",
    "resume",
    "train",
]
