"""A saved model made in a moment, for tests of what reads one (predict, export): random weights
with non-trivial BatchNorm statistics, written as `reslab train` writes model.safetensors."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import CLASSES, tiny_settings

MEAN = (0.49, 0.48, 0.45)
STD = (0.25, 0.24, 0.26)


def write_model(path: Path, in_channels: int = 3, image_size=(32, 32)) -> Path:
    """A resnet20 weights file whose header says: CLASSES, MEAN/STD (their first channel for
    a 1-channel model), `in_channels`, `image_size` (height, width)."""
    from reslab.run.checkpoint import save_weights
    from reslab.run.config import build_config
    from reslab.run.model import build_model

    config = build_config(tiny_settings(model="resnet20"))
    torch.manual_seed(0)
    data = {"classes": CLASSES, "in_channels": in_channels, "image_size": list(image_size)}
    model = build_model(config, data)
    with torch.no_grad():
        model(torch.randn(16, in_channels, *image_size))  # running statistics away from 0 and 1
    data = {
        "dataset": config.dataset,
        "classes": CLASSES,
        "mean": list(MEAN[:in_channels]),
        "std": list(STD[:in_channels]),
        "in_channels": in_channels,
        "image_size": list(image_size),
    }
    return save_weights(path, model.state_dict(), {"config": config.to_dict(), "data": data})
