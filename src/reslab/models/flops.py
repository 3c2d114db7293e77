"""Count a model's floating-point operations with PyTorch's own flop counter."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from reslab.models.registry import create_model, get_spec


def count_flops(name: str, batch_size: int = 1) -> int:
    """FLOPs of one forward pass at the model's default input size (a multiply-add counts 2).

    Runs on the meta device: only shapes are propagated, so even resnet1202 costs milliseconds.
    """
    spec = get_spec(name)
    with torch.device("meta"):
        model = create_model(name).eval()
        x = torch.empty(batch_size, *spec.input_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()
