"""The distribution of a layer's input and how far it moves over training: the quantity the
covariate-shift story is about (Ioffe & Szegedy 2015, arXiv:1502.03167, Sec. 2 and Fig. 1,
which plots the 15th, 50th and 85th percentiles of one sigmoid's input over training)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reslab.metrics.landscape import untouched

PERCENTILES = (15, 50, 85)  # Ioffe & Szegedy 2015, Fig. 1 (b, c)


def _per_unit(x: torch.Tensor) -> torch.Tensor:
    """(N, C, ...) -> (C, N * ...): each unit's values over the batch and positions."""
    return x.detach().transpose(0, 1).reshape(x.shape[1], -1).float()


def input_percentiles(
    model: nn.Module,
    x: torch.Tensor,
    modules: Sequence[nn.Module],
    q: Sequence[float] = PERCENTILES,
) -> list[torch.Tensor]:
    """One forward pass of `x` through the model, in its present mode, read by forward hooks:
    for each module, the q-th percentiles of each unit's input (a feature of a flat input, a
    channel of a feature map, over the batch and every position), as a (units, len(q)) tensor.
    The model is left as it was (a forward pass in training mode moves BN statistics)."""
    found: dict[int, torch.Tensor] = {}
    levels = torch.tensor([p / 100 for p in q])

    def hook(module, inputs):  # before the module: an in-place ReLU overwrites its input
        values = _per_unit(inputs[0])
        found[id(module)] = torch.quantile(values, levels.to(values.device), dim=1).T.cpu()

    handles = [m.register_forward_pre_hook(hook) for m in modules]
    try:
        with untouched(model), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return [found[id(m)] for m in modules]


def percentile_drift(track: torch.Tensor) -> torch.Tensor:
    """How far each unit's distribution travelled, from its percentiles at successive times
    (`track`: (times, units, percentiles), percentiles ascending): the path length of each
    percentile (the sum of its moves between successive times), averaged over the percentiles,
    in units of the unit's spread (its highest percentile minus its lowest, averaged over the
    times). One number per unit; NaN for a unit with no spread."""
    moved = track.diff(dim=0).abs().sum(dim=0).mean(dim=-1)
    spread = (track[..., -1] - track[..., 0]).mean(dim=0)
    return torch.where(spread > 0, moved / spread.clamp_min(1e-30), torch.nan)
