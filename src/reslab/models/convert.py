"""Other people's checkpoints, recognised and converted to reslab's module names.

torchvision's ImageNet state dicts need no conversion (reslab keeps its names). For the CIFAR
family, the most-used public reproduction of the paper's models (Idelbayev 2018) saves
`{"state_dict": ...}` from `DataParallel`: keys under `module.`, the classifier named `linear`,
option A padding zeros on both sides, no BN update counters, and inputs normalized with
ImageNet's mean and std, which the file does not say. Each known format is a row of `FORMATS`;
a file that fits none is refused in one line. Files are read with `weights_only=True`: nothing
in them can run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass(frozen=True)
class Converted:
    """A foreign checkpoint as reslab reads it: which model, its weights, what its inputs are."""

    format: str
    model: str  # a registered name
    state_dict: dict[str, torch.Tensor]
    model_kwargs: dict  # create_model keywords the weights assume (e.g. shortcut_pad)
    data: dict  # classes, mean, std, in_channels, image_size, dataset: as a reslab run records


@dataclass(frozen=True)
class ForeignFormat:
    name: str
    recognizes: Callable[[dict], bool]
    convert: Callable[[dict], Converted]


def _cifar_reference_keys(obj: dict) -> dict | None:
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or "module.linear.weight" not in state:
        return None
    return state


def _convert_cifar_reference(obj: dict) -> Converted:
    state = _cifar_reference_keys(obj)
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"module\.layer1\.(\d+)\.", k))}
    depth = 6 * len(blocks) + 2
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        key = "fc." + key.removeprefix("linear.") if key.startswith("linear.") else key
        renamed[key] = value
        if key.endswith("running_var"):  # BN update counters were not saved; eval ignores them
            renamed[key.removesuffix("running_var") + "num_batches_tracked"] = torch.tensor(0)
    return Converted(
        format="cifar-resnet-reference",
        model=f"resnet{depth}",
        state_dict=renamed,
        model_kwargs={"shortcut_pad": "both", "num_classes": 10},
        data={
            "dataset": "cifar10",
            "classes": CIFAR10_CLASSES,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "in_channels": 3,
            "image_size": [32, 32],
        },
    )


FORMATS = [
    ForeignFormat(
        "cifar-resnet-reference (Idelbayev 2018, DataParallel state dict)",
        lambda obj: _cifar_reference_keys(obj) is not None,
        _convert_cifar_reference,
    ),
]


def recognize(obj: object) -> Converted | None:
    """The checkpoint converted, if it is of a known foreign format."""
    for fmt in FORMATS:
        if isinstance(obj, dict) and fmt.recognizes(obj):
            return fmt.convert(obj)
    return None


def known_formats() -> str:
    return "; ".join(f.name for f in FORMATS)
