"""Measurements on trained or training networks: evaluation over batches, classification
metrics, gradient flow."""

from reslab.metrics.classification import most_confused, per_class_accuracy
from reslab.metrics.evaluation import EVAL_BATCH, EvalResult, evaluate_batches
from reslab.metrics.gradients import conv_layers, gradient_ratio, layer_statistics

__all__ = [
    "EVAL_BATCH",
    "EvalResult",
    "conv_layers",
    "evaluate_batches",
    "gradient_ratio",
    "layer_statistics",
    "most_confused",
    "per_class_accuracy",
]
