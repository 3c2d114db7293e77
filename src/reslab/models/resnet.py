"""One generic ResNet: a stem, stages of blocks, global pooling and a linear classifier.

Module names follow torchvision's `models/resnet.py` (conv1, bn1, layer1.., downsample, fc), so
torchvision's ImageNet weights load unchanged into the matching reslab models. As there, the
block and the norm come in as a class and a factory; names are looked up in `create_model`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reslab.models.blocks import BasicBlock
from reslab.models.layers import (
    Norm,
    NormLayer,
    ShortcutFactory,
    as_norm,
    projection_where_reshaped,
)

STEMS = ("imagenet", "cifar")


class ResNet(nn.Module):
    """`block`: BasicBlock, Bottleneck or a pre-activation block class. `norm`: a `Norm` or a
    bare factory such as `nn.BatchNorm2d`. `shortcut`: a shortcut factory (see `layers`), or
    None for the plain twin, whose blocks have no skip path at all."""

    def __init__(
        self,
        block: type[nn.Module] = BasicBlock,
        layers: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "imagenet",
        stem_width: int = 64,
        num_classes: int = 1000,
        in_channels: int = 3,
        norm: Norm | NormLayer = nn.BatchNorm2d,
        shortcut: ShortcutFactory | None = projection_where_reshaped,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; allowed: {', '.join(STEMS)}")
        self.norm = as_norm(norm)
        self.block_cls = block
        self.shortcut = shortcut
        self._make_stem(stem, stem_width, in_channels, preact=block.preact)
        self.in_planes = stem_width
        for i, (planes, blocks) in enumerate(zip(widths, layers, strict=True)):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", self._make_layer(planes, blocks, stride))
        self.num_stages = len(layers)
        # Pre-activation nets end on a norm-ReLU: the last block's sum is not yet normalized.
        final = [self.norm.layer(self.in_planes), nn.ReLU(inplace=True)] if block.preact else []
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
        block, out_planes = self.block_cls, planes * self.block_cls.expansion
        layers = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            skip = None
            if self.shortcut is not None:
                skip = self.shortcut(self.in_planes, out_planes, s, self.norm, block.preact)
            residual = self.shortcut is not None
            layers.append(block(self.in_planes, planes, s, skip, self.norm, residual))
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
