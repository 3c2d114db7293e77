"""The small CNN that introductions to Batch Normalization start from.

For 28x28x1 images (MNIST, Fashion-MNIST): conv 3x3 with 32 filters (no padding) -> norm -> ReLU
-> 2x2 max-pool -> flatten (32*13*13) -> linear 128 -> norm (1-d) -> ReLU -> linear. With
`placement="relu_bn"` each norm sits after its ReLU instead, as the common Keras version has it
(`Conv2D(..., activation="relu")` then `BatchNormalization()`); the BN paper put it before
(Ioffe & Szegedy 2015, Sec. 3.2). The flatten size follows from the input size, so the same
network runs on 3x32x32 CIFAR images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reslab.models.layers import Norm, NormLayer, ShortcutFactory, as_norm

PLACEMENTS = ("bn_relu", "relu_bn")


def _norm_act(norm: nn.Module, placement: str) -> list[nn.Module]:
    relu = nn.ReLU(inplace=True)
    return [norm, relu] if placement == "bn_relu" else [relu, norm]


class SmallCNN(nn.Module):
    """One conv layer and one hidden linear layer, each followed by a norm and a ReLU."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        norm: Norm | NormLayer = nn.BatchNorm2d,
        shortcut: ShortcutFactory | None = None,
        zero_init_residual: bool = False,
        image_size: Sequence[int] = (28, 28),
        filters: int = 32,
        hidden: int = 128,
        placement: str = "bn_relu",
    ):
        super().__init__()
        if shortcut is not None or zero_init_residual:
            raise ValueError("SmallCNN has no residual blocks: shortcut must be None")
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, not {placement!r}")
        n = as_norm(norm)
        h, w = image_size
        flat = filters * ((h - 2) // 2) * ((w - 2) // 2)  # 3x3 valid conv, then 2x2 pooling
        # A norm with no 1-d form (GroupNorm) leaves the hidden layer unnormalized.
        norm1d = n.layer1d(hidden) if n.layer1d is not None else nn.Identity()
        # A norm right after a layer absorbs its bias; after the ReLU it does not.
        after_relu = placement == "relu_bn"
        conv_bias = n.conv_bias or after_relu
        fc_bias = n.layer1d is None or n.conv_bias or after_relu
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, filters, 3, bias=conv_bias),
            *_norm_act(n.layer(filters), placement),
            nn.MaxPool2d(2),
        )
        self.hidden = nn.Sequential(
            nn.Linear(flat, hidden, bias=fc_bias), *_norm_act(norm1d, placement)
        )
        self.fc = nn.Linear(hidden, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not self.fc:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)
        return self.fc(self.hidden(x))
