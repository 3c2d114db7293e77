"""A VGG network for 32x32 images (Simonyan & Zisserman 2015, arXiv:1409.1556): 3x3
convolutions, each followed by a norm and a ReLU, with 2x2 max-pooling between stages and no
skip path; one linear classifier on the pooled features, as CIFAR versions of VGG have. The
layout is data, as in torchvision's VGG: a width per conv, "M" for a pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reslab.models.layers import Norm, NormLayer, ShortcutFactory, as_norm, conv3x3

POOL = "M"
# VGG-11 (the paper's configuration A), widths 64-128-256-512-512.
VGG11 = (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL)


def scaled(layout: Sequence[int | str], divisor: int) -> tuple[int | str, ...]:
    """A layout with every width divided by `divisor`: the same depth at a fraction of the cost."""
    return tuple(w if w == POOL else int(w) // divisor for w in layout)


class VGG(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        norm: Norm | NormLayer = nn.BatchNorm2d,
        shortcut: ShortcutFactory | None = None,
        zero_init_residual: bool = False,
        layout: Sequence[int | str] = VGG11,
    ):
        super().__init__()
        if shortcut is not None or zero_init_residual:
            raise ValueError("VGG has no residual blocks: shortcut must be None")
        n = as_norm(norm)
        layers: list[nn.Module] = []
        width = in_channels
        for item in layout:
            if item == POOL:
                layers.append(nn.MaxPool2d(2))
                continue
            layers += [conv3x3(width, int(item), bias=n.conv_bias), n.layer(int(item)),
                       nn.ReLU(inplace=True)]  # fmt: skip
            width = int(item)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # 1x1 already at 32x32: kept for other sizes
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))
