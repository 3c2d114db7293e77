"""Trained weights from any source, as one thing: the one resolver.

A source is what a user names: `pretrained:NAME` (shipped weights, `resnet20` or
`resnet20.TAG`, or torchvision's ImageNet weights from the local hub cache), a run directory, a
reslab checkpoint (.pt), a safetensors weights file, a checkpoint of a known foreign format, or a
bare state dict. `resolve` turns each into a `Trained`: the state dict and what it needs to be
used (the model, its config, its classes and input normalization). `SOURCES` is the table, tried
in order: a new source is one row. Nothing in a file can run code (`reslab.io.read_torch_file`).

`create_model(name, pretrained=...)` and `create_model(name, weights=PATH)` end here, as do
`reslab.load`, `reslab train --init` and a finished run read back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from reslab.errors import CheckpointError, ConfigError, UserError
from reslab.io import clip, read_torch_file
from reslab.models import create_model as create_network
from reslab.models import get_spec
from reslab.models import pretrained as shipped
from reslab.models.convert import known_formats, recognize
from reslab.run.checkpoint import check_checkpoint, is_checkpoint, load_weights
from reslab.run.config import LEGACY_DEFAULTS
from reslab.run.directory import RunDir
from reslab.run.model import build_model

PRETRAINED = "pretrained"  # `pretrained:NAME` names shipped (or torchvision's) weights


def named(name: str) -> str:
    """The source string of weights known by name: named("resnet20.TAG")."""
    return f"{PRETRAINED}:{name}"


@dataclass
class Trained:
    """Weights and what they need: which network, trained how, on what inputs."""

    state: dict[str, torch.Tensor]
    model: str | None  # the registered name, where the source or the caller says
    config: dict | None  # the training config, as saved; None where the source has none
    data: dict  # what the inputs were: classes, mean, std, in_channels, image_size, dataset
    source: str  # where they came from, in words
    path: Path | None = None  # the file read
    card: dict = field(default_factory=dict)  # more for `pretrained_cfg`: test_acc, ...

    def build(self, num_classes: int | None = None) -> nn.Module:
        """The network the weights were trained as, with them loaded, in eval mode
        (`num_classes` sizes its classifier where the source does not name its classes)."""
        if self.model is None:
            raise CheckpointError(f"{self.source} does not say which model it holds; name it")
        config = {**(self.config or {}), "model": self.model}
        net = build_model(config, self.data, num_classes)
        try:
            net.load_state_dict(self.state)
        except RuntimeError as e:
            raise CheckpointError(
                f"{self.source} does not fit model {self.model!r} "
                f"({clip(str(e).splitlines()[0], 160)})"
            ) from None
        return net.eval()

    def pretrained_cfg(self) -> dict:
        """What a user of the weights needs to know, attached to the network they load into."""
        return {"source": self.source, **self.data, **self.card}


class Spec:
    """What a user named, read at most once: a name, or a path and (for torch files) its content."""

    def __init__(self, text: str | Path, model: str | None):
        self.text, self.model = str(text), model
        kind, colon, rest = self.text.partition(":")
        self.name = (rest or model) if kind == PRETRAINED and (rest or not colon) else None

    @cached_property
    def path(self) -> Path:
        return Path(self.text)

    @cached_property
    def content(self) -> object:
        return read_torch_file(self.path)


@dataclass(frozen=True)
class Source:
    what: str
    claims: Callable[[Spec], bool]
    read: Callable[[Spec], Trained]


def _has_shipped(spec: Spec) -> bool:
    if spec.name is None:
        return False
    model = spec.name.partition(".")[0]
    return model not in shipped.TORCHVISION_WEIGHTS or model in shipped.models_with_weights()


def _shipped(spec: Spec) -> Trained:
    get_spec(spec.name.partition(".")[0])  # an unknown model is named as such
    w = shipped.find(spec.name)
    m = w.manifest
    data = {k: m[k] for k in ("classes", "mean", "std", "in_channels", "image_size")}
    data |= {"dataset": m["config"]["dataset"], "digests": m["data_digests"] or {}}
    card = {"dataset": m["dataset"], "test_acc": m["test_acc"]}
    state = shipped.read_verified(w)
    return Trained(state, m["model"], dict(m["config"]), data, w.name, w.file, card)


def _torchvision(spec: Spec) -> Trained:
    model, _, tag = spec.name.partition(".")
    if tag:
        raise ConfigError(f"torchvision's weights for {model} have no tags: say {model}")
    state, cfg = shipped.torchvision_state(model)
    data = {k: v for k, v in cfg.items() if k != "source"}
    return Trained(state, model, None, data, cfg["source"])


def _run_directory(spec: Spec) -> Trained:
    found = RunDir(spec.path).model_file()
    if found is None:
        raise UserError(
            f"{spec.path} holds no model.safetensors or checkpoints/last.pt: not a run "
            "directory, or a run that has not finished an epoch yet"
        )
    return resolve(found, spec.model)


def _safetensors(spec: Spec) -> Trained:
    """reslab's weights and exports carry their config and data as JSON in the header; any
    other safetensors file is a bare state dict."""
    state, meta = load_weights(spec.path)
    config = {**LEGACY_DEFAULTS, **meta["config"]} if meta.get("config") else None
    model = config["model"] if config else spec.model
    return Trained(state, model, config, meta.get("data", {}), str(spec.path), spec.path)


def _checkpoint(spec: Spec) -> Trained:
    state = check_checkpoint(spec.content, spec.path)
    config = {**LEGACY_DEFAULTS, **state["config"]}
    weights = state["model"]
    if state.get("ema"):  # the averaged weights are the run's model; AveragedModel keeps them
        ema = state["ema"]  # under "module." and counts its updates in n_averaged
        weights = {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}
    return Trained(weights, config["model"], config, state["data"], str(spec.path), spec.path)


def _foreign(spec: Spec) -> Trained:
    c = recognize(spec.content)
    # No images of the run's training split were held out: there is no validation split.
    config = {"model": c.model, "dataset": c.data["dataset"], "val_split": 0}
    config.update({k: v for k, v in c.model_kwargs.items() if k != "num_classes"})
    return Trained(c.state_dict, c.model, config, c.data, f"{spec.path} ({c.format})", spec.path)


def _is_state_dict(content: object) -> bool:
    return (
        isinstance(content, dict)
        and bool(content)
        and all(hasattr(v, "shape") for v in content.values())
    )


def _state_dict(spec: Spec) -> Trained:
    return Trained(spec.content, spec.model, None, {}, str(spec.path), spec.path)


def _missing(spec: Spec) -> Trained:
    raise UserError(f"no such run directory or checkpoint: {spec.path}")


SOURCES = [
    Source("shipped weights", _has_shipped, _shipped),
    Source("torchvision's ImageNet weights", lambda s: s.name is not None, _torchvision),
    Source("nothing", lambda s: not s.path.exists(), _missing),
    Source("a run directory", lambda s: s.path.is_dir(), _run_directory),
    Source("a safetensors file", lambda s: s.path.suffix == ".safetensors", _safetensors),
    Source("a reslab checkpoint", lambda s: is_checkpoint(s.content), _checkpoint),
    Source("a foreign checkpoint", lambda s: recognize(s.content) is not None, _foreign),
    Source("a state dict", lambda s: _is_state_dict(s.content), _state_dict),
]


def resolve(source: str | Path, model: str | None = None) -> Trained:
    """The weights `source` names (see the module's docstring). `model` is the network they
    are for, where the caller knows it: it names the model of `pretrained` alone and of a bare
    state dict (a source that names its own model keeps it; the caller checks the two agree)."""
    spec = Spec(source, model)
    for s in SOURCES:
        if s.claims(spec):
            return s.read(spec)
    raise CheckpointError(
        f"{spec.path} is not a state dict of tensors nor a known checkpoint format "
        f"({known_formats()})"
    )


def create_model(
    name: str,
    num_classes: int | None = None,
    in_channels: int | None = None,
    norm: str | None = None,
    shortcut: str | None = None,
    zero_init_residual: bool = False,
    shortcut_pad: str | None = None,
    pretrained: bool | str = False,
    weights: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
) -> nn.Module:
    """Build a registered network by name (`reslab.models.create_model`; None keeps the model's
    own value of each setting), with trained weights in it where asked.

    `pretrained=True` loads the model's default shipped weights (a tag, or "resnet20.TAG" as
    the name, picks others; ImageNet models take torchvision's from the local hub cache).
    `weights=PATH` loads a file or run directory: reslab's checkpoints and safetensors, a
    torchvision state dict, or a known foreign checkpoint format. Either returns the network in
    eval mode, with a `pretrained_cfg` dict saying its classes and input normalization; the
    weights fix the architecture, so the settings above other than num_classes are refused.
    """
    arch = {"in_channels": in_channels, "norm": norm, "shortcut": shortcut}
    arch |= {"zero_init_residual": zero_init_residual or None, "shortcut_pad": shortcut_pad}
    arch = {k: v for k, v in (arch | {"image_size": image_size}).items() if v is not None}
    if not pretrained and weights is None:
        return create_network(name, num_classes, **arch)
    if pretrained and weights is not None:
        raise ConfigError("give pretrained or weights, not both")
    if arch:
        raise ConfigError(
            f"{', '.join(arch)}: set by the trained weights, not by the caller; load them as "
            "they are"
        )
    model, _, tag = name.partition(".")
    source = named(name if pretrained is True or tag else f"{name}.{pretrained}")
    trained = resolve(source if pretrained else weights, model)
    if trained.model != model:
        raise CheckpointError(f"{trained.source} holds a {trained.model}, not a {model}")
    classes = trained.data.get("classes")
    if num_classes is not None and classes and num_classes != len(classes):
        raise ConfigError(
            f"{trained.source} has {len(classes)} classes, not {num_classes}; load it with its "
            "own classes and replace model.fc to fine-tune on others"
        )
    net = trained.build(num_classes)
    net.pretrained_cfg = trained.pretrained_cfg()
    return net
