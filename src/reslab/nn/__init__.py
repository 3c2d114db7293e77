"""Layers written from first principles, each tested against its PyTorch original."""

from reslab.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction
from reslab.nn.whitening import PatchWhitening

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNormFunction", "PatchWhitening"]
