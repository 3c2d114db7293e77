"""Inference on trained models: load one, evaluate it on a data set, classify image files.

Everything here starts from a saved model (a run directory, a checkpoint or a weights file) and
returns documented dataclasses; training lives in `reslab.train`.
"""

from reslab.infer.evaluate import Evaluation, evaluate
from reslab.infer.load import LoadedModel, load, load_pretrained
from reslab.infer.predict import Prediction, predict

__all__ = [
    "Evaluation",
    "LoadedModel",
    "Prediction",
    "evaluate",
    "load",
    "load_pretrained",
    "predict",
]
