"""Networks with trained weights in them: `create_model(..., pretrained=...)` and
`create_model(..., weights=PATH)` end here."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from reslab.errors import CheckpointError, ConfigError
from reslab.io import read_torch_file
from reslab.models import pretrained as shipped_weights
from reslab.models.convert import known_formats, recognize
from reslab.models.registry import create_model, get_spec


def _check_classes(num_classes: int | None, have: int, source: str) -> None:
    if num_classes is not None and num_classes != have:
        raise ConfigError(
            f"{source} has {have} classes, not {num_classes}; load it with its own classes "
            "and replace model.fc to fine-tune on others"
        )


def build_from_config(
    name: str, config: dict, num_classes: int, in_channels: int, image_size=None
) -> nn.Module:
    """The network a saved training config describes (norm, shortcut and its padding)."""
    shortcut = config.get("shortcut", "default")
    return create_model(
        name,
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        norm=config.get("norm", "batchnorm"),
        shortcut=None if shortcut == "default" else shortcut,
        shortcut_pad=config.get("shortcut_pad", "after"),
    )


def load_pretrained(name: str, tag: bool | str, num_classes: int | None) -> nn.Module:
    model, _, named_tag = name.partition(".")
    tag = named_tag or tag
    get_spec(model)  # an unknown model name is reported as such
    has_shipped = model in shipped_weights.models_with_weights()
    if not has_shipped and model in shipped_weights.TORCHVISION_WEIGHTS and tag is True:
        state, cfg = shipped_weights.torchvision_state(model)
        _check_classes(num_classes, len(cfg["classes"]), cfg["source"])
        net = shipped_weights.load_into(create_model(model), state, cfg["source"])
        net.pretrained_cfg = cfg
        return net
    w = shipped_weights.find(model, tag)
    m = w.manifest
    _check_classes(num_classes, len(m["classes"]), w.name)
    net = build_from_config(
        m["model"], m["config"], len(m["classes"]), m["in_channels"], m["image_size"]
    )
    net = shipped_weights.load_into(net, shipped_weights.read_verified(w), w.name)
    net.pretrained_cfg = shipped_weights.pretrained_cfg(m, f"reslab {w.name}")
    return net


def _safetensors(path: Path) -> tuple[dict, dict]:
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from None
    try:
        meta = json.loads(header.get("meta", "{}"))
    except json.JSONDecodeError:
        meta = {}
    return state, meta


def load_weights_file(name: str, path: str | Path, num_classes: int | None) -> nn.Module:
    path = Path(path)
    if path.suffix == ".safetensors":
        state, meta = _safetensors(path)
        data, config = meta.get("data", {}), meta.get("config", {})
        classes = data.get("classes")
        if classes:
            _check_classes(num_classes, len(classes), str(path))
        n = len(classes) if classes else num_classes
        size = data.get("image_size")
        net = build_from_config(name, config, n, data.get("in_channels"), size) if config else None
        net = net or create_model(name, num_classes=n)
        net = shipped_weights.load_into(net, state, str(path))
        net.pretrained_cfg = {"source": str(path), **data}
        return net
    obj = read_torch_file(path)
    converted = recognize(obj)
    if converted is not None:
        if converted.model != name:
            raise CheckpointError(f"{path} holds a {converted.model}, not a {name}")
        _check_classes(num_classes, len(converted.data["classes"]), str(path))
        net = create_model(name, **converted.model_kwargs)
        net = shipped_weights.load_into(net, converted.state_dict, str(path))
        net.pretrained_cfg = {"source": f"{path} ({converted.format})", **converted.data}
        return net
    if isinstance(obj, dict) and obj and all(hasattr(v, "shape") for v in obj.values()):
        net = shipped_weights.load_into(create_model(name, num_classes=num_classes), obj, str(path))
        net.pretrained_cfg = {"source": str(path)}
        return net
    raise CheckpointError(
        f"{path} is not a state dict of tensors nor a known checkpoint format ({known_formats()})"
    )
