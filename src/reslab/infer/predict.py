"""Classify image files with a saved model, as `reslab predict` and `reslab.predict` do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from reslab.data import read_image
from reslab.infer.load import LoadedModel, load


@dataclass
class Prediction:
    """The most likely classes of one image, most likely first."""

    image: str
    top: list[tuple[str, float]]  # (class name, probability)

    def to_dict(self) -> dict:
        return {"image": self.image, "top": [{"class": c, "prob": p} for c, p in self.top]}


def _prepare(path: str, data: dict) -> torch.Tensor:
    """Decode, match the model's channels and size, normalize with its training statistics."""
    image = read_image(Path(path), channels=data["in_channels"])  # uint8 (C, H, W)
    size = tuple(data["image_size"])
    x = image.float().div_(255)
    if tuple(x.shape[1:]) != size:
        x = F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)
        x = x[0]
    mean = torch.tensor(data["mean"]).view(-1, 1, 1)
    std = torch.tensor(data["std"]).view(-1, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def predict(
    model: str | Path | LoadedModel, images: list[str | Path], top_k: int = 3
) -> list[Prediction]:
    """The `top_k` classes of each image file, with their probabilities."""
    loaded = model if isinstance(model, LoadedModel) else load(model)
    classes = loaded.classes
    batch = torch.stack([_prepare(str(p), loaded.data) for p in images])
    probs = torch.softmax(loaded.model(batch), dim=1)
    values, indices = probs.topk(min(top_k, len(classes)), dim=1)
    return [
        Prediction(
            str(path),
            [(classes[i], round(v, 6)) for v, i in zip(vals.tolist(), idx.tolist(), strict=True)],
        )
        for path, vals, idx in zip(images, values, indices, strict=True)
    ]
