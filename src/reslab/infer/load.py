"""A trained model, ready to use: loaded from a run directory, a checkpoint (.pt), a weights file,
a foreign checkpoint of a known format, or shipped weights (`pretrained:NAME`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from reslab.errors import CheckpointError, UserError
from reslab.models import pretrained as catalog
from reslab.run.config import TrainConfig, saved_config
from reslab.run.weights import named, resolve


@dataclass
class LoadedModel:
    """A trained network and what it needs to be used: how it was trained and on what."""

    model: nn.Module  # on the CPU, in eval mode
    config: TrainConfig  # the config it was trained with
    data: dict  # dataset, classes, mean, std, in_channels, image_size
    source: Path  # the file it was read from

    @property
    def classes(self) -> list[str]:
        return list(self.data["classes"])

    @contextlib.contextmanager
    def on(self, device: torch.device) -> Iterator[nn.Module]:
        """The model on `device` for the block, back on the CPU after it: a LoadedModel stays
        as documented, so one can be evaluated on CUDA and then exported."""
        try:
            yield self.model.to(device)
        finally:
            self.model.cpu()


def load(source: str | Path) -> LoadedModel:
    """The model saved at `source`, on the CPU and in eval mode: a run directory (its final
    weights, or its last checkpoint while unfinished), a reslab .pt checkpoint or .safetensors
    file, a checkpoint of a known foreign format (its normalization attached), or shipped
    weights as `pretrained:NAME`. A checkpoint's config is read with the meaning it had when
    saved."""
    trained = resolve(source)
    if trained.config is None or not trained.data.get("classes"):
        raise CheckpointError(
            f"{trained.source} carries no reslab config: it was not written by reslab"
        )
    return LoadedModel(trained.build(), saved_config(trained.config), trained.data, trained.path)


def load_pretrained(name: str) -> LoadedModel:
    """Shipped weights by name: "resnet20" (its default tag) or "resnet20.TAG"."""
    model = name.partition(".")[0]
    if model in catalog.TORCHVISION_WEIGHTS and model not in catalog.models_with_weights():
        raise UserError(
            f"torchvision's ImageNet weights for {model} load in Python "
            f"(reslab.create_model({model!r}, pretrained=True)); --pretrained takes the weights "
            f"reslab ships: {', '.join(catalog.models_with_weights()) or 'none yet'}"
        )
    return load(named(name))
