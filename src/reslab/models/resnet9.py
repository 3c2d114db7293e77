"""ResNet-9, the small residual BN network of the fast CIFAR-10 training records (Page 2018,
"How to train your ResNet"; later refined in airbench, Jordan 2024): a conv-BN-ReLU stem, three
stages that double the width and pool, two of them with one residual block, max-pooling, a linear
classifier with a fixed 1/8 output scale. With `whiten`, the stem is instead a frozen 2x2
patch-whitening convolution and a ReLU (reslab.nn.PatchWhitening), as in airbench; its filters
are set from the training images before the first step."""

from __future__ import annotations

import torch
from torch import nn

from reslab.models.layers import (
    Norm,
    NormLayer,
    ShortcutFactory,
    as_norm,
    projection_where_reshaped,
)
from reslab.nn.whitening import PatchWhitening


def _conv_bn(c_in: int, c_out: int, norm: Norm) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm.conv_bias),
        norm.layer(c_out),
        nn.ReLU(inplace=True),
    ]


class Residual(nn.Module):
    """Two conv-norm-ReLU layers and a skip path from the shortcut factory (the identity for
    options A and B, whose shape never changes here; a projection for C); no skip path when
    the factory is None."""

    def __init__(self, channels: int, norm: Norm, shortcut: ShortcutFactory | None):
        super().__init__()
        self.branch = nn.Sequential(
            *_conv_bn(channels, channels, norm), *_conv_bn(channels, channels, norm)
        )
        self.residual = shortcut is not None
        self.downsample = shortcut(channels, channels, 1, norm, False) if shortcut else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if not self.residual:
            return out
        return out + (x if self.downsample is None else self.downsample(x))


class ResNet9(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        norm: Norm | NormLayer = nn.BatchNorm2d,
        shortcut: ShortcutFactory | None = projection_where_reshaped,
        zero_init_residual: bool = False,
        widths=(64, 128, 256, 512),
        scale: float = 0.125,
        whiten: bool = False,
    ):
        super().__init__()
        n = as_norm(norm)
        w0, w1, w2, w3 = widths
        if whiten:  # its width is fixed by the patch: 2 x 3 x 2 x 2 = 24 for RGB
            white = PatchWhitening(in_channels, kernel_size=2)
            self.stem, w0 = nn.Sequential(white, nn.ReLU(inplace=True)), white.out_channels
        else:
            self.stem = nn.Sequential(*_conv_bn(in_channels, w0, n))
        self.layer1 = nn.Sequential(
            *_conv_bn(w0, w1, n), nn.MaxPool2d(2), Residual(w1, n, shortcut)
        )
        self.layer2 = nn.Sequential(*_conv_bn(w1, w2, n), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(
            *_conv_bn(w2, w3, n), nn.MaxPool2d(2), Residual(w3, n, shortcut)
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(w3, num_classes, bias=False)
        # A fixed small output scale keeps early logits (and so the loss) tame at high lr.
        self.scale = scale
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not isinstance(m, PatchWhitening):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for block in (self.layer1[-1], self.layer3[-1]):
                last_norm = block.branch[-2]
                if getattr(last_norm, "weight", None) is not None:
                    nn.init.zeros_(last_norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1)) * self.scale
