"""Measurements on trained or training networks: classification metrics, gradient flow."""

from reslab.metrics.classification import most_confused, per_class_accuracy

__all__ = ["most_confused", "per_class_accuracy"]
