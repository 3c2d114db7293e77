"""The network a config describes: the one builder from a run's config (or a saved one) and
its data facts to a network, and the one list of the keys that decide its architecture."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from reslab.models import create_model
from reslab.run.config import TrainConfig, default_of

# The config keys that decide what a network with given parameters computes: weights trained
# under other values do not do what they learnt to (a checkpoint, --init, shipped weights).
ARCH_KEYS = ("model", "norm", "shortcut", "shortcut_pad")


def architecture(config: TrainConfig | Mapping[str, object]) -> dict[str, object]:
    """The architecture keys of a config; a key a saved config lacks has its default."""
    values = config.to_dict() if isinstance(config, TrainConfig) else config
    return {key: values.get(key, default_of(key)) for key in ARCH_KEYS}


def build_model(
    config: TrainConfig | Mapping[str, object],
    data: Mapping[str, object] | None = None,
    num_classes: int | None = None,
) -> nn.Module:
    """The network `config` describes (a TrainConfig, or a saved config as a mapping), sized
    for `data`'s classes, channels and image size (a run's data record, `Setup.data_meta`); the
    model's own where `data` does not say (or `num_classes`, where `data` names no classes)."""
    arch, data = architecture(config), data or {}
    values = config.to_dict() if isinstance(config, TrainConfig) else config
    classes, size = data.get("classes"), data.get("image_size")
    return create_model(
        str(arch["model"]),
        num_classes=len(classes) if classes else num_classes,
        in_channels=data.get("in_channels"),
        norm=str(arch["norm"]),
        shortcut=None if arch["shortcut"] == "default" else str(arch["shortcut"]),
        shortcut_pad=str(arch["shortcut_pad"]),
        zero_init_residual=bool(values.get("zero_init_residual", False)),
        image_size=tuple(size) if size else None,
    )
