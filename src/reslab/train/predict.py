"""Classify image files with a saved model, as `reslab predict` does."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from reslab.data import read_image
from reslab.train.load import load


def _prepare(path: str, data: dict) -> torch.Tensor:
    """Decode, match the model's channels and size, normalize with its training statistics."""
    image = read_image(Path(path), channels=data["in_channels"])  # uint8 (C, H, W)
    size = tuple(data["image_size"])
    x = image.float().div_(255)
    if tuple(x.shape[1:]) != size:
        x = F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)[
            0
        ]
    mean = torch.tensor(data["mean"]).view(-1, 1, 1)
    std = torch.tensor(data["std"]).view(-1, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def predict_files(model_path: str | Path, images: list[str], top_k: int = 3) -> list[dict]:
    loaded = load(model_path)
    classes = loaded.data["classes"]
    batch = torch.stack([_prepare(p, loaded.data) for p in images])
    probs = torch.softmax(loaded.model(batch), dim=1)
    values, indices = probs.topk(min(top_k, len(classes)), dim=1)
    return [
        {
            "image": str(path),
            "top": [
                {"class": classes[i], "prob": round(v, 6)}
                for v, i in zip(vals.tolist(), idx.tolist(), strict=True)
            ],
        }
        for path, vals, idx in zip(images, values, indices, strict=True)
    ]
