"""Small building pieces shared by every block: convolutions, norm factories and shortcuts."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from reslab.errors import ConfigError
from reslab.nn import BatchNorm2d as ScratchBatchNorm2d

NormLayer = Callable[[int], nn.Module]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=bias)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=bias)


def group_norm(num_channels: int) -> nn.GroupNorm:
    # 32 groups as in Wu & He 2018 (arXiv:1803.08494) where the width allows it, but never fewer
    # than 4 channels per group: the 16-channel CIFAR stages would otherwise become instance norm.
    return nn.GroupNorm(math.gcd(32, max(1, num_channels // 4)), num_channels)


@dataclass(frozen=True)
class Norm:
    """How a model normalizes: the layer factory, and whether convolutions need their own bias."""

    layer: NormLayer
    conv_bias: bool  # True when the norm has no shift of its own to absorb a conv bias


NORMS: dict[str, Norm] = {
    "batchnorm": Norm(nn.BatchNorm2d, conv_bias=False),
    "batchnorm-scratch": Norm(ScratchBatchNorm2d, conv_bias=False),
    "groupnorm": Norm(group_norm, conv_bias=False),
    "none": Norm(lambda _channels: nn.Identity(), conv_bias=True),
}

SHORTCUTS = ("A", "B", "C", "none")


def get_norm(name: str) -> Norm:
    if name not in NORMS:
        raise ConfigError(f"norm: unknown value {name!r}; allowed: {', '.join(NORMS)}")
    return NORMS[name]


PAD_MODES = ("both", "after")


class PadShortcut(nn.Module):
    """Option A of He et al. 2015: subsample by striding, zero-pad extra channels; no weights.

    The paper does not say where the zeros go. `pad="both"` puts half before and half after the
    existing channels, as the most-used public reproduction does (so its checkpoints load
    unchanged); `pad="after"` appends them all, as reslab did before 0.2 (its runs say so).
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, pad: str = "both"):
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(f"shortcut A cannot shrink channels ({in_planes} -> {out_planes})")
        if pad not in PAD_MODES:
            raise ValueError(f"pad must be one of {PAD_MODES}, not {pad!r}")
        extra = out_planes - in_planes
        self.before = extra // 2 if pad == "both" else 0
        self.after = extra - self.before
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, zeros_before={self.before}, zeros_after={self.after}"


def make_shortcut(
    kind: str,
    in_planes: int,
    out_planes: int,
    stride: int,
    norm: Norm,
    preact: bool,
    pad: str = "both",
) -> nn.Module | None:
    """The module on the skip path, or None for a plain identity (also for kind "none")."""
    reshapes = stride != 1 or in_planes != out_planes
    if kind == "none" or (kind in ("A", "B") and not reshapes):
        return None
    if kind == "A":
        return PadShortcut(in_planes, out_planes, stride, pad)
    conv = conv1x1(in_planes, out_planes, stride, bias=norm.conv_bias)
    # Pre-activation blocks feed the projection an already normalized input (He et al. 2016,
    # arXiv:1603.05027), so the projection carries no norm of its own.
    return conv if preact else nn.Sequential(conv, norm.layer(out_planes))
