"""What the config's `optimizer` names mean: the optimizers as a table, and parameter groups
that can spare norms and biases from decay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from reslab.run.muon import Muon, hidden_weights


class Settings(Protocol):
    """The config keys an optimizer is built from."""

    optimizer: str
    lr: float
    muon_lr: float
    momentum: float
    weight_decay: float
    no_decay_norm_bias: bool


# name -> builder(model, config). Momentum doubles as Adam's beta1 so one flag tunes both.
OPTIMIZERS: dict[str, Callable[[nn.Module, Settings], torch.optim.Optimizer]] = {
    "sgd": lambda m, c: torch.optim.SGD(_groups(m, c), lr=c.lr, momentum=c.momentum),
    "nesterov": lambda m, c: torch.optim.SGD(
        _groups(m, c), lr=c.lr, momentum=c.momentum, nesterov=True
    ),
    "adam": lambda m, c: torch.optim.Adam(_groups(m, c), lr=c.lr, betas=(c.momentum, 0.999)),
    "adamw": lambda m, c: torch.optim.AdamW(_groups(m, c), lr=c.lr, betas=(c.momentum, 0.999)),
    "rmsprop": lambda m, c: torch.optim.RMSprop(
        _groups(m, c), lr=c.lr, momentum=c.momentum, alpha=0.9
    ),
    "muon": lambda m, c: Muon(muon_groups(m, c), lr=c.lr, momentum=c.momentum),
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


def _groups(model: nn.Module, config: Settings) -> list[dict]:
    return param_groups(model, config.weight_decay, config.no_decay_norm_bias)


def muon_groups(model: nn.Module, config: Settings) -> list[dict]:
    """`param_groups` less the hidden weights, which form a last group of their own, for Muon at
    `muon_lr` (they have two or more dimensions: they decay whatever `no_decay_norm_bias` says).
    The plain groups come first, so the lr a run logs, the first group's, is `lr`'s. The rest
    keeps the optimizer and lr it would have had, and Muon's weights get their own lr: how the
    Muon repository's README (github.com/KellerJordan/Muon) replaces a tuned AdamW."""
    hidden = hidden_weights(model)
    ids = {id(p) for p in hidden.values()}
    plain = [
        {**g, "params": [p for p in g["params"] if id(p) not in ids]}
        for g in _groups(model, config)
    ]
    muon = {"params": list(hidden.values()), "muon": True, "lr": config.muon_lr}
    return [*plain, {**muon, "weight_decay": config.weight_decay}]


def build_optimizer(model: nn.Module, config: Settings) -> torch.optim.Optimizer:
    return OPTIMIZERS[config.optimizer](model, config)
