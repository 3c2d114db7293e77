"""One generic ResNet: a stem, stages of blocks, global pooling and a linear classifier.

Module names follow torchvision's `models/resnet.py` (conv1, bn1, layer1.., downsample, fc), so
torchvision's ImageNet weights load unchanged into the matching reslab models.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reslab.errors import ConfigError
from reslab.models.blocks import BLOCKS
from reslab.models.layers import SHORTCUTS, get_norm, make_shortcut

STEMS = ("imagenet", "cifar")


class ResNet(nn.Module):
    def __init__(
        self,
        block: str,
        layers: Sequence[int],
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "imagenet",
        stem_width: int = 64,
        num_classes: int = 1000,
        in_channels: int = 3,
        norm: str = "batchnorm",
        shortcut: str = "B",
        zero_init_residual: bool = False,
        shortcut_pad: str = "both",
    ):
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ConfigError(
                f"shortcut: unknown value {shortcut!r}; allowed: {', '.join(SHORTCUTS)}"
            )
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; allowed: {', '.join(STEMS)}")
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; allowed: {', '.join(BLOCKS)}")
        block_cls = BLOCKS[block]
        self.norm = get_norm(norm)
        self.block_cls = block_cls
        self.shortcut = shortcut
        self.shortcut_pad = shortcut_pad
        self._make_stem(stem, stem_width, in_channels, preact=block_cls.preact)
        self.in_planes = stem_width
        for i, (planes, blocks) in enumerate(zip(widths, layers, strict=True)):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", self._make_layer(planes, blocks, stride))
        self.num_stages = len(layers)
        # Pre-activation nets end on a norm-ReLU: the last block's sum is not yet normalized.
        final = [self.norm.layer(self.in_planes), nn.ReLU(inplace=True)] if block_cls.preact else []
        self.final = nn.Sequential(*final)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.in_planes, num_classes)
        self._init_weights(zero_init_residual)

    def _make_stem(self, stem: str, width: int, in_channels: int, preact: bool) -> None:
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=self.norm.conv_bias)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=self.norm.conv_bias)
        # A pre-activation first block normalizes its own input, so the stem stops at the conv.
        self.bn1 = nn.Identity() if preact else self.norm.layer(width)
        self.relu = nn.Identity() if preact else nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out_planes = planes * self.block_cls.expansion
        layers = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            shortcut = make_shortcut(
                self.shortcut,
                self.in_planes,
                out_planes,
                s,
                self.norm,
                self.block_cls.preact,
                self.shortcut_pad,
            )
            residual = self.shortcut != "none"
            layers.append(self.block_cls(self.in_planes, planes, s, shortcut, self.norm, residual))
            self.in_planes = out_planes
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # He et al. 2015 (arXiv:1502.01852) init, fan-out as in torchvision.
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif getattr(m, "weight", None) is not None and not isinstance(m, nn.Linear):
                nn.init.ones_(m.weight)  # every norm: BatchNorm (torch's or ours), GroupNorm
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # Each residual branch starts as zero, so every block starts as the identity:
            # "improves the model by 0.2~0.3%" (Goyal et al. 2017, arXiv:1706.02677).
            for block in self.blocks():
                last = block.last_layer()
                if getattr(last, "weight", None) is not None:
                    nn.init.zeros_(last.weight)

    def blocks(self) -> list[nn.Module]:
        return [b for i in range(self.num_stages) for b in getattr(self, f"layer{i + 1}")]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.final(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.forward_features(x))
        return self.fc(torch.flatten(x, 1))
