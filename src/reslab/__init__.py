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

# The public names, each read from its module on first use (PEP 562): `import reslab` costs no
# torch import, so that `reslab --help` answers at once; `reslab.fit` imports what it needs.
_PUBLIC = {
    "Evaluation": "reslab.infer",
    "LoadedModel": "reslab.infer",
    "Prediction": "reslab.infer",
    "evaluate": "reslab.infer",
    "load": "reslab.infer",
    "predict": "reslab.infer",
    "list_models": "reslab.models",
    "model_info": "reslab.models",
    "TrainConfig": "reslab.run.config",
    "build_config": "reslab.run.config",
    "create_model": "reslab.run.weights",
    "TrainResult": "reslab.train.session",
    "fit": "reslab.train.session",
    "resume": "reslab.train.session",
}


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'reslab' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


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
