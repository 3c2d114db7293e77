"""A first layer that is not trained: a convolution that whitens the image's small patches.

The filters are the eigenvectors of the training images' k x k patch covariance, each divided by
the square root of its eigenvalue (ZCA's rotation without the rotation back), with each filter's
negative beside it so that a ReLU after it keeps both signs. The CIFAR-10 speed records start
their networks this way (2x2 patches, frozen weights, a trainable bias; Jordan 2024, airbench),
which spares the first layer's training and starts the next one from decorrelated inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchWhitening(nn.Conv2d):
    """A `kernel_size` convolution without padding, 2 x in_channels x k x k output channels,
    weights frozen; `fit_` sets them from images. Until then the weights are zero."""

    def __init__(self, in_channels: int, kernel_size: int = 2, eps: float = 5e-4):
        patch = in_channels * kernel_size * kernel_size
        super().__init__(in_channels, 2 * patch, kernel_size, padding=0, bias=True)
        self.eps = eps
        self.weight.requires_grad_(False)
        with torch.no_grad():
            self.weight.zero_()
            self.bias.zero_()

    @torch.no_grad()
    def fit_(self, images: torch.Tensor) -> PatchWhitening:
        """Set the filters from a batch of images as the network sees them (normalized,
        (N, C, H, W)): every k x k patch of every image is a sample of the covariance."""
        c, k = self.in_channels, self.kernel_size[0]
        patches = F.unfold(images.double(), k).transpose(1, 2).reshape(-1, c * k * k)
        cov = torch.cov(patches.T)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
        filters = (eigenvectors / (eigenvalues + self.eps).sqrt()).T.flip(0)  # largest first
        filters = filters.reshape(-1, c, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight))
        return self
