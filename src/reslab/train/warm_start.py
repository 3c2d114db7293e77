"""`--init`: a run that starts from trained weights instead of random ones (fine-tuning, or
training on from a finished run with a new schedule).

The source is read before any data is decoded, so a wrong path fails at once; it is applied to
the freshly built model before the optimizer and the weight average are made from it. A resumed
run does not read it again: its checkpoint holds the weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from reslab.errors import CheckpointError, ConfigError, UserError
from reslab.io import clip

log = logging.getLogger("reslab.train")

PRETRAINED = "pretrained"
# Settings that change what a network with the same parameters computes: a source trained under
# other values would start the run from weights that no longer do what they learnt to.
ARCH_KEYS = ("model", "norm", "shortcut", "shortcut_pad")
CLASSIFIER = "fc."  # every reslab network's last layer (torchvision's name)


@dataclass
class Initial:
    """Weights to start from, and what they were trained as (None where the source says not)."""

    state: dict[str, torch.Tensor]
    config: dict | None
    classes: list[str]
    source: str


def read(config) -> Initial:
    """The weights `config.init` names: a run directory, a checkpoint or weights file (reslab's
    or a known foreign format), or pretrained[:NAME] for shipped weights (torchvision's for the
    ImageNet ResNets, from the local hub cache); refused if trained as another architecture."""
    try:
        initial = _read(config.init, config.model)
    except UserError as e:  # a missing file, a bad checksum: say which flag named it
        raise type(e)(f"init: {e}") from None
    _check_architecture(initial, config)
    return initial


def _read(spec: str, model: str) -> Initial:
    # Imported here: reslab.infer.load builds models through reslab.train.setup, which imports
    # this module.
    from reslab.infer.load import load, load_pretrained
    from reslab.models import pretrained

    kind, colon, name = spec.partition(":")
    if kind == PRETRAINED and (colon == "" or name):
        name = name or model
        bare = name.partition(".")[0]
        if bare in pretrained.TORCHVISION_WEIGHTS and bare not in pretrained.models_with_weights():
            if "." in name:
                raise ConfigError(f"torchvision's weights for {bare} have no tags: say {bare}")
            state, cfg = pretrained.torchvision_state(bare)
            return Initial(state, {"model": bare}, cfg["classes"], cfg["source"])
        loaded = load_pretrained(name)
    else:
        loaded = load(spec)
    return Initial(
        loaded.model.state_dict(), loaded.config.to_dict(), loaded.classes, str(loaded.source)
    )


def _check_architecture(initial: Initial, config) -> None:
    if initial.config is None:
        return
    for key in ARCH_KEYS:
        have, want = initial.config.get(key), getattr(config, key)
        if key == "model" and have != want:
            raise ConfigError(f"init: {initial.source} holds a {have}, this run trains a {want}")
        if have is not None and have != want:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(
                f"init: {initial.source} was trained with {key} {have!r}, this run has {want!r}; "
                f"add {flag} {have} to start from it"
            )


def apply(model: nn.Module, initial: Initial, config, classes: list[str]) -> str:
    """Load `initial` into `model`; the classifier keeps its fresh initialization when the
    classes differ. Returns the line that says what was loaded."""
    state = dict(initial.state)
    same_classes = list(initial.classes) == list(classes)
    if not same_classes:
        state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER)}
    own = model.state_dict()
    fresh = set() if same_classes else {k for k in own if k.startswith(CLASSIFIER)}
    problems = [
        f"{k} is {tuple(v.shape)}, not {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    problems += [f"missing {k}" for k in sorted(set(own) - set(state) - fresh)]
    problems += [f"unexpected {k}" for k in sorted(set(state) - set(own))]
    if problems:
        raise CheckpointError(
            f"init: {initial.source} does not fit {config.model} ({clip(problems[0], 160)})"
        )
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v)
    line = f"starting from the weights of {initial.source}"
    if not same_classes:
        line += (
            f"; its classifier was for {len(initial.classes)} other classes: fc starts afresh "
            f"for these {len(classes)}"
        )
    return line
