"""Layers written from first principles, each tested against its PyTorch original."""

from reslab.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNormFunction"]
