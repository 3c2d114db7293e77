"""Fold each BatchNorm into the convolution right before it, for inference.

In eval mode BN is a per-channel affine map y = a * z + b with a = gamma / sqrt(var + eps) and
b = beta - a * mean; applied to z = W x + c it equals (a W) x + (a (c - mean) + beta): one conv
with a bias, no BN (Jacob et al. 2018, arXiv:1712.05877, Sec. 3.2).

Which BN follows which conv is read from reslab's module names, not traced:
- post-activation blocks and the ResNet stem: conv{i} -> bn{i};
- pre-activation blocks (`preact = True`): conv{i} -> bn{i+1}. Their bn1 follows the previous
  block's addition, not a conv, so it stays;
- any nn.Sequential (the projection shortcut `Sequential(conv1x1, norm)`): neighbouring children.
A pair counts only when the conv's output feeds nothing but that BN, which holds for every pair
above by construction of the blocks.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from reslab.nn import BatchNorm2d as ScratchBatchNorm2d

_BATCHNORMS = (nn.BatchNorm2d, nn.SyncBatchNorm, ScratchBatchNorm2d)


def _is_foldable_bn(m: nn.Module) -> bool:
    # Without running statistics (track_running_stats=False) eval mode still normalizes with
    # batch statistics, which no fixed affine map can reproduce.
    return (
        isinstance(m, _BATCHNORMS)
        and getattr(m, "running_mean", None) is not None
        and getattr(m, "running_var", None) is not None
    )


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.Module) -> None:
    """Fold `bn` into `conv` in place; `conv` gains a bias if it had none."""
    # float64 for the scale: var + eps can be tiny and its rsqrt large.
    scale = (bn.running_var.double() + bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
    bias = shift if conv.bias is None else conv.bias.double() * scale + shift
    conv.weight.copy_(weight.to(conv.weight.dtype))
    conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)


def _candidate_pairs(module: nn.Module) -> list[tuple[str, str]]:
    if isinstance(module, nn.Sequential):
        keys = [name for name, _ in module.named_children()]
        return list(zip(keys[:-1], keys[1:], strict=True))
    after = 1 if getattr(module, "preact", False) else 0
    return [(f"conv{i}", f"bn{i + after}") for i in range(1, 10)]


def conv_bn_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) names of the direct children of `module` where the BN follows the conv."""
    children = dict(module.named_children())
    return [
        (c, b)
        for c, b in _candidate_pairs(module)
        if isinstance(children.get(c), nn.Conv2d)
        and _is_foldable_bn(children.get(b))
        and children[c].out_channels == children[b].num_features
    ]


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """A folded deep copy in eval mode and the number of BatchNorms folded; `model` is untouched.

    Folded BNs become nn.Identity. BNs with no conv right before them (pre-activation bn1 and the
    final norm of pre-activation nets) and BNs without running statistics stay as they are.
    """
    folded_model = copy.deepcopy(model).eval()
    folded = 0
    for module in list(folded_model.modules()):
        for conv_name, bn_name in conv_bn_pairs(module):
            fold_conv_bn(getattr(module, conv_name), getattr(module, bn_name))
            setattr(module, bn_name, nn.Identity())
            folded += 1
    return folded_model, folded
