"""The model registry: every named network is a `ModelSpec` of plain data, built on demand."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from reslab.errors import ConfigError
from reslab.models.resnet import ResNet


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    arch: Mapping[str, object]  # keyword arguments of ResNet: block, layers, widths, stem, ...
    num_classes: int  # default classifier size (1000 for ImageNet, 10 for CIFAR-10)
    input_size: tuple[int, int, int]  # (channels, height, width) the model is meant for
    reference_error: float | None = None  # published top-1 error, %
    reference: str | None = None  # where that figure comes from
    tags: tuple[str, ...] = field(default=())
    builder: Callable[..., nn.Module] = ResNet  # the class the arch keywords go to


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, in registration order."""
    return [n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern)]


def get_spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"model: unknown name {name!r}{hint} (see `reslab models`)")
    return _REGISTRY[name]


def create_model(
    name: str,
    num_classes: int | None = None,
    in_channels: int = 3,
    norm: str = "batchnorm",
    shortcut: str | None = None,
    zero_init_residual: bool = False,
    shortcut_pad: str = "both",
) -> nn.Module:
    """Build a registered network; `shortcut=None` keeps the one its paper uses.

    `shortcut_pad` places option A's zero channels: "both" sides (the default) or "after"."""
    spec = get_spec(name)
    arch = dict(spec.arch)
    if shortcut is not None:
        arch["shortcut"] = shortcut
    if spec.builder is ResNet:
        arch["shortcut_pad"] = shortcut_pad
    return spec.builder(
        **arch,
        num_classes=spec.num_classes if num_classes is None else num_classes,
        in_channels=in_channels,
        norm=norm,
        zero_init_residual=zero_init_residual,
    )


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_info(name: str) -> dict[str, object]:
    spec = get_spec(name)
    with torch.device("meta"):  # shapes only: no memory, no init cost, even for resnet1202
        model = create_model(name)
    return {
        "name": spec.name,
        "family": spec.family,
        "params": count_params(model),
        "num_classes": spec.num_classes,
        "input_size": spec.input_size,
        "block": spec.arch.get("block", spec.builder.__name__),
        "layers": tuple(spec.arch.get("layers", ())),
        "shortcut": spec.arch.get("shortcut", "B"),
        "reference_error": spec.reference_error,
        "reference": spec.reference,
    }
