"""An exponential moving average of a model's weights whose update never waits for the device.

torch's `AveragedModel.update_parameters` decides between "copy" and "average" by reading its
step counter, a tensor on the model's device: on CUDA that read is a host-device
synchronization in every training step, and the host can no longer queue work ahead of the GPU.
`EMA` is an `AveragedModel` (same state dict, same `module`, same arithmetic) that keeps a host
copy of the counter, read once after construction or a load.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class EMA(AveragedModel):
    """`AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)`:
    parameters and buffers (BN statistics too) averaged with weight `decay`, the first update a
    copy."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self._count: int | None = 0  # host copy of n_averaged; None: read it at the next update

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._count = None
        return result

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        if self._count is None:
            self._count = int(self.n_averaged)  # one read, after a load
        averaged = itertools.chain(self.module.parameters(), self.module.buffers())
        current = itertools.chain(model.parameters(), model.buffers())
        groups: dict[tuple, tuple[list, list]] = {}
        for p_avg, p_model in zip(averaged, current, strict=True):
            p_avg, p_model = p_avg.detach(), p_model.detach().to(p_avg.device)
            if self._count == 0:
                p_avg.copy_(p_model)
            mine, theirs = groups.setdefault((p_avg.device, p_avg.dtype), ([], []))
            mine.append(p_avg)
            theirs.append(p_model)
        if self._count > 0:
            for (device, _), (mine, theirs) in groups.items():
                self.multi_avg_fn(mine, theirs, self.n_averaged.to(device))
        self.n_averaged += 1
        self._count += 1
