"""Gradient flow and signal propagation: per-layer gradient norms and response statistics.

He et al. 2015 (Fig. 7) plot the std of each layer's response; vanishing or exploding gradients
show as per-layer gradient norms that shrink or grow towards the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The 3x3/1x1 convolutions on the main path, input to output (shortcut projections out)."""
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and "downsample" not in n
    ]


def layer_statistics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """One forward/backward pass in training mode; for each conv, input to output:
    its weight-gradient norm, and the std of its response (output) as in He et al. Fig. 7."""
    layers = conv_layers(model)
    stds: dict[str, float] = {}
    hooks = [
        m.register_forward_hook(
            lambda mod, inp, out, name=name: stds.__setitem__(
                name, out.detach().float().std().item()
            )
        )
        for name, m in layers
    ]
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        F.cross_entropy(model(x), y).backward()
    finally:
        for h in hooks:
            h.remove()
    rows = []
    for depth, (name, m) in enumerate(layers):
        grad = m.weight.grad
        rows.append(
            {
                "layer": depth + 1,
                "name": name,
                "grad_norm": float("nan") if grad is None else grad.norm().item(),
                "weight_norm": m.weight.norm().item(),
                "response_std": stds.get(name),
            }
        )
    model.zero_grad(set_to_none=True)
    return rows


def gradient_ratio(rows: list[dict]) -> float:
    """Gradient norm of the first conv over that of the last: << 1 means vanishing towards the
    input, >> 1 exploding."""
    first, last = rows[0]["grad_norm"], rows[-1]["grad_norm"]
    return first / last if last > 0 else float("inf")
