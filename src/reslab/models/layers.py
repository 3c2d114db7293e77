"""Small building pieces shared by every block: convolutions, norms and shortcuts.

Norms and shortcuts go into the networks as objects (a `Norm`, a shortcut factory), never as
names: the names users type are looked up once, in `registry.create_model`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from reslab.nn import BatchNorm1d as ScratchBatchNorm1d
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


def _identity(_channels: int) -> nn.Module:
    return nn.Identity()


NOISE_SPREAD, NOISE_SHIFT = 0.5, 1.0  # StepShift's scale 1 +- spread and shift +- shift


class StepShift(nn.Module):
    """Covariate shift injected on purpose (Santurkar et al. 2018, arXiv:1805.11604, Sec. 2.1):
    in training mode, every unit (a channel of a feature map, a feature of a flat input) is
    scaled by a factor drawn from U(1 - spread, 1 + spread) and shifted by an offset drawn
    from U(-shift, shift), both redrawn at every forward pass (one per training step) and shared
    by every sample and position of the batch. So the distribution the next layer sees moves by
    a random mean and variance at every step, however steady the layer before it. In eval mode
    it is the identity, the draws' mean. The paper draws its noise per activation of each
    sample, from a distribution whose mean and variance change at every step; drawing it per
    unit keeps the part the covariate-shift story is about, the step-to-step move of each
    unit's distribution, without the per-sample noise."""

    def __init__(self, features: int, spread: float = NOISE_SPREAD, shift: float = NOISE_SHIFT):
        super().__init__()
        self.features, self.spread, self.shift = features, spread, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        shape = (1, self.features) + (1,) * (x.dim() - 2)
        u = torch.rand(2, *shape, device=x.device, dtype=x.dtype) * 2 - 1  # U(-1, 1)
        return x * (1 + self.spread * u[0]) + self.shift * u[1]

    def extra_repr(self) -> str:
        return f"{self.features}, scale 1 +- {self.spread:g}, shift +- {self.shift:g}"


def noisy(norm: NormLayer) -> NormLayer:
    """`norm`, then a `StepShift` of its output."""
    return lambda features: nn.Sequential(norm(features), StepShift(features))


@dataclass(frozen=True)
class Norm:
    """How a network normalizes: a factory for feature maps, one for flat features (None where
    the norm has no such form), and whether layers need a bias of their own."""

    layer: NormLayer  # channels -> module over (N, C, H, W)
    layer1d: NormLayer | None = None  # features -> module over (N, C)
    conv_bias: bool = False  # True when the norm has no shift of its own to absorb a bias
    help: str = ""


NORMS: dict[str, Norm] = {
    "batchnorm": Norm(nn.BatchNorm2d, nn.BatchNorm1d, help="torch's BatchNorm"),
    "batchnorm-scratch": Norm(
        ScratchBatchNorm2d, ScratchBatchNorm1d, help="reslab's BatchNorm, from first principles"
    ),
    "batchnorm-noisy": Norm(
        noisy(nn.BatchNorm2d),
        noisy(nn.BatchNorm1d),
        help="torch's BatchNorm, then a random per-unit scale and shift redrawn every step",
    ),
    "groupnorm": Norm(group_norm, None, help="GroupNorm, 32 groups of >= 4 channels"),
    "none": Norm(_identity, _identity, conv_bias=True, help="no normalization"),
}


def as_norm(norm: Norm | NormLayer) -> Norm:
    """A bare factory (e.g. `nn.BatchNorm2d`, as torchvision takes it) means a norm with a shift."""
    return norm if isinstance(norm, Norm) else Norm(norm)


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


# A shortcut factory builds the module on a block's skip path:
# (in_planes, out_planes, stride, norm, preact) -> module, or None for the identity.
ShortcutFactory = Callable[[int, int, int, Norm, bool], "nn.Module | None"]


def _reshapes(in_planes: int, out_planes: int, stride: int) -> bool:
    return stride != 1 or in_planes != out_planes


def pad_shortcut(in_planes, out_planes, stride, norm, preact, pad: str = "both"):
    """Option A: the identity, zero-padded and subsampled where the shape changes."""
    if not _reshapes(in_planes, out_planes, stride):
        return None
    return PadShortcut(in_planes, out_planes, stride, pad)


def projection(in_planes, out_planes, stride, norm: Norm, preact: bool) -> nn.Module:
    """A 1x1 convolution (and norm): option C everywhere, option B where the shape changes."""
    conv = conv1x1(in_planes, out_planes, stride, bias=norm.conv_bias)
    # Pre-activation blocks feed the projection an already normalized input (He et al. 2016,
    # arXiv:1603.05027), so the projection carries no norm of its own.
    return conv if preact else nn.Sequential(conv, norm.layer(out_planes))


def projection_where_reshaped(in_planes, out_planes, stride, norm, preact):
    """Option B: the identity, and a projection where the shape changes."""
    if not _reshapes(in_planes, out_planes, stride):
        return None
    return projection(in_planes, out_planes, stride, norm, preact)


@dataclass(frozen=True)
class ShortcutKind:
    help: str
    factory: Callable[[str], ShortcutFactory | None]  # pad mode -> factory; None: no skip path


SHORTCUTS: dict[str, ShortcutKind] = {
    "A": ShortcutKind(
        "identity, zero-padded where the shape changes (no weights)",
        lambda pad: lambda *shape: pad_shortcut(*shape, pad=pad),
    ),
    "B": ShortcutKind(
        "identity, projection where the shape changes", lambda pad: projection_where_reshaped
    ),
    "C": ShortcutKind("projection in every block", lambda pad: projection),
    "none": ShortcutKind("no skip path: the plain twin", lambda pad: None),
}
