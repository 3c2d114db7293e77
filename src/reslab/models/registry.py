"""The model registry: every named network is a `ModelSpec` of plain data, built on demand.

`create_model` is the edge where names become objects: the norm, the shortcut kind and the
model name are looked up here, and only here are bad names reported as user errors.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from reslab.errors import ConfigError
from reslab.models.layers import NORMS, PAD_MODES, SHORTCUTS
from reslab.models.resnet import ResNet


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    name: str
    family: str
    arch: Mapping[str, object]  # keyword arguments of the builder: block, layers, widths, ...
    num_classes: int  # default classifier size (1000 for ImageNet, 10 for CIFAR-10)
    input_size: tuple[int, int, int]  # (channels, height, width) the model is meant for
    shortcut: str = "B"  # the shortcut option its paper uses (a key of SHORTCUTS)
    reference_error: float | None = None  # published top-1 error, %
    reference: str | None = None  # where that figure comes from
    builder: Callable[..., nn.Module] = ResNet  # the class the arch keywords go to
    sized: bool = False  # the builder needs the input's (height, width): a flatten, not a pool


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    if spec.shortcut not in SHORTCUTS:
        raise ValueError(f"model {spec.name!r}: unknown shortcut {spec.shortcut!r}")
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


def _lookup(key: str, value: str, table: Mapping[str, object]):
    if value not in table:
        raise ConfigError(f"{key}: unknown value {value!r}; allowed: {', '.join(table)}")
    return table[value]


def create_model(
    name: str,
    num_classes: int | None = None,
    in_channels: int | None = None,
    norm: str = "batchnorm",
    shortcut: str | None = None,
    zero_init_residual: bool = False,
    shortcut_pad: str = "both",
    image_size: tuple[int, int] | None = None,
) -> nn.Module:
    """Build a registered network by name, with freshly initialized weights (trained weights:
    `reslab.create_model(..., pretrained=...)`, in `reslab.run.weights`).

    `norm` is a key of `NORMS`; `shortcut` a key of `SHORTCUTS` (None keeps the one its paper
    uses); `shortcut_pad` places option A's zero channels on "both" sides or all "after".
    `num_classes`, `in_channels` and `image_size` (height, width) default to the model's own;
    the size matters only to networks that flatten their features (the small CNN).
    """
    spec = get_spec(name)
    kind = _lookup("shortcut", spec.shortcut if shortcut is None else shortcut, SHORTCUTS)
    _lookup("shortcut_pad", shortcut_pad, dict.fromkeys(PAD_MODES))
    sized = {"image_size": tuple(image_size or spec.input_size[1:])} if spec.sized else {}
    return spec.builder(
        **spec.arch,
        **sized,
        num_classes=spec.num_classes if num_classes is None else num_classes,
        in_channels=spec.input_size[0] if in_channels is None else in_channels,
        norm=_lookup("norm", norm, NORMS),
        shortcut=kind.factory(shortcut_pad),
        zero_init_residual=zero_init_residual,
    )


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_info(name: str) -> dict[str, object]:
    spec = get_spec(name)
    with torch.device("meta"):  # shapes only: no memory, no init cost, even for resnet1202
        model = create_model(name)
    block = spec.arch.get("block")
    return {
        "name": spec.name,
        "family": spec.family,
        "params": count_params(model),
        "num_classes": spec.num_classes,
        "input_size": spec.input_size,
        "block": block.__name__ if block is not None else spec.builder.__name__,
        "layers": tuple(spec.arch.get("layers", ())),
        "shortcut": spec.shortcut,
        "reference_error": spec.reference_error,
        "reference": spec.reference,
    }
