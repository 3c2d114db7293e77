"""The fully connected network of the BN paper's first experiment (Ioffe & Szegedy 2015,
arXiv:1502.03167, Sec. 4.1): hidden layers of 100 units, each a linear map, a norm and a
nonlinearity (sigmoid in the paper), then a linear classifier, on flattened images."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from reslab.models.layers import Norm, NormLayer, ShortcutFactory, as_norm


class MLP(nn.Module):
    """Linear -> norm (its 1-d form) -> nonlinearity, for each hidden width, then a linear
    classifier. The modules are registered in the order they run, input to output."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        norm: Norm | NormLayer = nn.BatchNorm1d,
        shortcut: ShortcutFactory | None = None,
        zero_init_residual: bool = False,
        image_size: Sequence[int] = (28, 28),
        hidden: Sequence[int] = (100, 100, 100),
        activation: Callable[[], nn.Module] = nn.Sigmoid,
    ):
        super().__init__()
        if shortcut is not None or zero_init_residual:
            raise ValueError("MLP has no residual blocks: shortcut must be None")
        n = as_norm(norm)
        layers, width = [], in_channels * math.prod(image_size)
        for out in hidden:
            # A norm with no 1-d form (GroupNorm) leaves the layer unnormalized, with a bias.
            layers += [
                nn.Linear(width, out, bias=n.layer1d is None or n.conv_bias),
                n.layer1d(out) if n.layer1d is not None else nn.Identity(),
                activation(),
            ]
            width = out
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                # "Small random Gaussian values" (Sec. 4.1): std 1/sqrt(fan-in), which keeps a
                # sigmoid's input of order one at the start whatever the width.
                nn.init.normal_(m.weight, std=m.in_features**-0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(torch.flatten(x, 1)))
