"""Fold each BatchNorm into the convolution before it, for inference.

In eval mode BN is a per-channel affine map y = a * z + b with a = gamma / sqrt(var + eps) and
b = beta - a * mean; applied to z = W x + c it equals (a W) x + (a c + b): one conv, no BN.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def _is_batchnorm(m: nn.Module) -> bool:
    # torch's BatchNorm2d and reslab.nn.BatchNorm2d alike; without running stats it cannot fold.
    return getattr(m, "running_var", None) is not None and hasattr(m, "num_batches_tracked")


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.Module) -> nn.Conv2d:
    scale = (bn.running_var + bn.eps).rsqrt()
    gamma = bn.weight if bn.weight is not None else torch.ones_like(scale)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(scale)
    a = gamma * scale
    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    folded.weight.copy_(conv.weight * a.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(a)
    folded.bias.copy_(a * (bias - bn.running_mean) + beta)
    return folded


def _pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) child names where the BN directly follows the conv."""
    names = dict(module.named_children())
    pairs = [(f"conv{i}", f"bn{i}") for i in range(1, 4) if f"conv{i}" in names]
    if isinstance(module, nn.Sequential):  # e.g. downsample = Sequential(conv1x1, norm)
        keys = list(names)
        pairs += list(zip(keys[:-1], keys[1:], strict=True))
    return [
        (c, b)
        for c, b in pairs
        if b in names
        and isinstance(names[c], nn.Conv2d)
        and _is_batchnorm(names[b])
        and not getattr(module, "preact", False)
    ]  # pre-activation: BN precedes its conv


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """A folded copy in eval mode and the number of BN layers folded; the input is untouched.

    Pre-activation blocks put BN-ReLU before the conv, so those BNs stay (there is no conv
    directly before them to absorb them).
    """
    model = copy.deepcopy(model).eval()
    folded = 0
    for module in list(model.modules()):
        for conv_name, bn_name in _pairs(module):
            conv, bn = getattr(module, conv_name), getattr(module, bn_name)
            setattr(module, conv_name, fold_conv_bn(conv, bn))
            setattr(module, bn_name, nn.Identity())
            folded += 1
    return model, folded
