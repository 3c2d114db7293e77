"""reslab: build, train and study batch-normalized residual networks.

The Python API in one place:

- models: `create_model`, `list_models`, `model_info`;
- training: `build_config` (or `TrainConfig`), `fit`, `resume` -> `TrainResult`;
- inference: `load` -> `LoadedModel`, `evaluate` -> `Evaluation`, `predict` -> `Prediction`s.

The subpackages (`reslab.models`, `reslab.data`, `reslab.train`, `reslab.infer`, ...) keep their
own names: no function here shadows one.
"""

__version__ = "0.2.0"

import time as _time  # noqa: E402

# When this process started using reslab, near enough: `reslab train --time-budget` counts the
# whole command from here (torch's import included).
STARTED = _time.perf_counter()

from reslab.infer import Evaluation, LoadedModel, Prediction, evaluate, load, predict  # noqa: E402
from reslab.models import list_models, model_info  # noqa: E402
from reslab.run.config import TrainConfig, build_config  # noqa: E402
from reslab.run.weights import create_model  # noqa: E402
from reslab.train.session import TrainResult, fit, resume  # noqa: E402

__all__ = [
    "Evaluation",
    "LoadedModel",
    "Prediction",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "build_config",
    "create_model",
    "evaluate",
    "fit",
    "list_models",
    "load",
    "model_info",
    "predict",
    "resume",
]
