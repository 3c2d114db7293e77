"""Measurements on trained or training networks: classification metrics, gradient flow."""

from reslab.metrics.classification import most_confused, per_class_accuracy
from reslab.metrics.gradients import conv_layers, gradient_ratio, layer_statistics

__all__ = [
    "conv_layers",
    "gradient_ratio",
    "layer_statistics",
    "most_confused",
    "per_class_accuracy",
]
