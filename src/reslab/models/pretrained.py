"""The catalog of pretrained weights: the ones reslab trained and ships, and torchvision's in
the local hub cache. Turning these (or any file) into a network is `reslab.run.weights`'s.

Each shipped file `weights/MODEL.TAG.safetensors` has a manifest `weights/MODEL.TAG.json` of
one schema (`MANIFEST_KEYS`): what the network is, what its inputs are, on which data and split
and with which recipe it was trained, what it scored, and the file's sha256, which is checked
before every load. Weights are named as in timm: `resnet20.TAG`; `pretrained=True` takes the
model's default tag.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from safetensors.torch import load_file

from reslab.errors import CheckpointError, ConfigError

WEIGHTS_DIR = Path(__file__).parent / "weights"
SCHEMA = 2
MANIFEST_KEYS = (
    "schema",  # 2: the data named by checksum, not by the trainer's folder
    "model",  # registered name, e.g. "resnet20"
    "tag",  # e.g. "onecycle_c10jpeg"; the file is MODEL.TAG.safetensors
    "default",  # true for the tag `pretrained=True` picks
    "sha256",  # of the .safetensors file
    "classes",  # class names, in output order
    "mean",  # input normalization, per channel, for RGB in [0, 1]
    "std",
    "in_channels",
    "image_size",  # [height, width]
    "dataset",  # the data set, in words: which copy of which data
    "split",  # which images trained it, which validated it
    "test_acc",  # top-1 on the test split, 0..1, read once at the end
    "val_acc",  # top-1 on the validation split, or null without one
    "recipe",  # the recipe's name
    "config",  # the full training config (reslab.run.config.TrainConfig as a dict); an image
    # folder is named by its folder's name alone (folder:cifar10), never the trainer's path
    "data_digests",  # split -> checksum of the decoded data (reslab.data.DataSplits.digests)
    "epochs",
    "wall_time_s",  # training time: the sum of the run's epoch times (steps only)
    "device",  # the hardware it trained on, in words
    "torch",  # torch version
    "reslab_commit",  # git commit of the code that trained it
    "date",  # YYYY-MM-DD
)
OPTIONAL_KEYS = (  # in manifests written since they were added; absent from older ones
    "test_images",  # how many test images `test_acc` counts (for its sampling interval)
    "stopped_s",  # seconds the run's process was stopped (SIGSTOP, Ctrl-Z) inside its recorded
    # training time, taken out of `wall_time_s`
)


@dataclass(frozen=True)
class Weights:
    """One shipped weights file and its manifest."""

    manifest: dict

    @property
    def name(self) -> str:
        return f"{self.manifest['model']}.{self.manifest['tag']}"

    @property
    def file(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.safetensors"


@cache
def shipped() -> dict[str, Weights]:
    """Every shipped weights file, by name (MODEL.TAG)."""
    found = {}
    for path in sorted(WEIGHTS_DIR.glob("*.json")):
        manifest = json.loads(path.read_text())
        missing = [k for k in MANIFEST_KEYS if k not in manifest]
        if missing or manifest["schema"] != SCHEMA:
            raise ValueError(f"{path}: manifest is missing {missing} or has another schema")
        w = Weights(manifest)
        if path.stem != w.name:
            raise ValueError(f"{path}: the manifest names {w.name}, not {path.stem}")
        found[w.name] = w
    for model in {w.manifest["model"] for w in found.values()}:
        defaults = [
            n for n, w in found.items() if w.manifest["model"] == model and w.manifest["default"]
        ]
        if len(defaults) > 1:
            raise ValueError(f"{model} has more than one default tag: {', '.join(defaults)}")
    return found


def models_with_weights() -> list[str]:
    return sorted({w.manifest["model"] for w in shipped().values()})


def find(model: str, tag: str | bool = True) -> Weights:
    """The weights `model.tag`, or the model's default ones when `tag` is True."""
    if "." in model:
        model, tag = model.split(".", 1)
    candidates = [w for w in shipped().values() if w.manifest["model"] == model]
    if not candidates:
        have = ", ".join(models_with_weights()) or "none yet"
        raise ConfigError(
            f"no pretrained weights ship for {model!r}; models that have them: {have}"
        )
    if tag is True:
        chosen = [w for w in candidates if w.manifest["default"]] or candidates
        return chosen[0]
    for w in candidates:
        if w.manifest["tag"] == tag:
            return w
    tags = ", ".join(w.name for w in candidates)
    raise ConfigError(f"no pretrained weights {model}.{tag}; {model} has: {tags}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified(w: Weights) -> dict[str, torch.Tensor]:
    """The state dict of a shipped file, refused if its sha256 differs from the manifest's."""
    try:
        actual = sha256(w.file)
    except OSError as e:
        raise CheckpointError(
            f"{w.name}: its weights file cannot be read ({e.strerror}: {w.file}); reinstall reslab"
        ) from None
    if actual != w.manifest["sha256"]:
        raise CheckpointError(
            f"{w.file} has sha256 {actual[:12]}..., not the manifest's "
            f"{w.manifest['sha256'][:12]}...: the file is damaged or was replaced; reinstall reslab"
        )
    return load_file(str(w.file))


# torchvision's ImageNet weights for reslab's ImageNet models (identical module names).
TORCHVISION_WEIGHTS = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "resnet101": "ResNet101_Weights",
    "resnet152": "ResNet152_Weights",
}


def torchvision_state(model: str) -> tuple[dict[str, torch.Tensor], dict]:
    """torchvision's IMAGENET1K_V1 weights from the local torch hub cache; never downloads."""
    import torchvision

    weights = getattr(torchvision.models, TORCHVISION_WEIGHTS[model]).IMAGENET1K_V1
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise ConfigError(
            f"torchvision's weights for {model} are not in the torch hub cache ({path}); "
            f'fetch them once where there is network (python -c "import torchvision; '
            f"torchvision.models.{model}(weights='IMAGENET1K_V1')\") or copy the file there"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    meta = weights.meta
    cfg = {
        "source": f"torchvision {TORCHVISION_WEIGHTS[model]}.IMAGENET1K_V1",
        "classes": list(meta["categories"]),
        "mean": list(weights.transforms().mean),
        "std": list(weights.transforms().std),
        "in_channels": 3,
        "image_size": [224, 224],
        "dataset": "ImageNet-1k",
    }
    return state, cfg
