"""What the config's `optimizer` names mean: the optimizers as a table, and parameter groups
that can spare norms and biases from decay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn


class Settings(Protocol):
    """The config keys an optimizer is built from."""

    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    no_decay_norm_bias: bool


# name -> builder(param_groups, config). Momentum doubles as Adam's beta1 so one flag tunes both.
OPTIMIZERS: dict[str, Callable[[list[dict], Settings], torch.optim.Optimizer]] = {
    "sgd": lambda g, c: torch.optim.SGD(g, lr=c.lr, momentum=c.momentum),
    "nesterov": lambda g, c: torch.optim.SGD(g, lr=c.lr, momentum=c.momentum, nesterov=True),
    "adam": lambda g, c: torch.optim.Adam(g, lr=c.lr, betas=(c.momentum, 0.999)),
    "adamw": lambda g, c: torch.optim.AdamW(g, lr=c.lr, betas=(c.momentum, 0.999)),
    "rmsprop": lambda g, c: torch.optim.RMSprop(g, lr=c.lr, momentum=c.momentum, alpha=0.9),
}


def param_groups(model: nn.Module, weight_decay: float, no_decay_norm_bias: bool) -> list[dict]:
    """One group, or two when norm weights and biases are kept out of weight decay: decaying a
    BN gain only rescales what follows it, which changes the effective lr rather than regularizing
    (van Laarhoven 2017, arXiv:1706.05350)."""
    if not no_decay_norm_bias:
        return [
            {
                "params": [p for p in model.parameters() if p.requires_grad],
                "weight_decay": weight_decay,
            }
        ]
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            # Conv and linear weights are the only parameters with more than one dimension.
            (decay if p.ndim > 1 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, config: Settings) -> torch.optim.Optimizer:
    groups = param_groups(model, config.weight_decay, config.no_decay_norm_bias)
    return OPTIMIZERS[config.optimizer](groups, config)
