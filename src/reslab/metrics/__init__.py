"""Measurements on trained or training networks: evaluation over batches, classification
metrics, gradient flow, layer-input distributions and the loss landscape along a direction."""

from reslab.metrics.activations import PERCENTILES, input_percentiles, percentile_drift
from reslab.metrics.classification import most_confused, per_class_accuracy
from reslab.metrics.evaluation import EVAL_BATCH, EvalResult, evaluate_batches
from reslab.metrics.gradients import conv_layers, gradient_ratio, layer_statistics
from reslab.metrics.landscape import (
    Along,
    Shift,
    along,
    covariate_shift,
    untouched,
    weight_layers,
)

__all__ = [
    "EVAL_BATCH",
    "PERCENTILES",
    "Along",
    "EvalResult",
    "Shift",
    "along",
    "conv_layers",
    "covariate_shift",
    "evaluate_batches",
    "gradient_ratio",
    "input_percentiles",
    "layer_statistics",
    "most_confused",
    "per_class_accuracy",
    "percentile_drift",
    "untouched",
    "weight_layers",
]
