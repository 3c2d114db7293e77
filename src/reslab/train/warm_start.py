"""`--init`: a run that starts from trained weights instead of random ones (fine-tuning, or
training on from a finished run with a new schedule).

The source is read before any data is decoded, so a wrong path fails at once; it is applied to
the freshly built model before the optimizer and the weight average are made from it. A resumed
run does not read it again: its checkpoint holds the weights.
"""

from __future__ import annotations

import torch
from torch import nn

from reslab.errors import CheckpointError, ConfigError, UserError
from reslab.io import clip
from reslab.run.config import TrainConfig, flag
from reslab.run.model import ARCH_KEYS, architecture
from reslab.run.weights import Trained, resolve

CLASSIFIER = "fc."  # every reslab network's last layer (torchvision's name)


def read(config: TrainConfig) -> Trained:
    """The weights `config.init` names (any source `reslab.run.weights.resolve` takes; a bare
    `pretrained` means the run's own model's shipped default), refused if trained as another
    architecture."""
    try:
        initial = resolve(config.init, config.model)
    except UserError as e:  # a missing file, a bad checksum: say which flag named it
        raise type(e)(f"init: {e}") from None
    _check_architecture(initial, config)
    return initial


def _check_architecture(initial: Trained, config: TrainConfig) -> None:
    if initial.model is not None and initial.model != config.model:
        raise ConfigError(
            f"init: {initial.source} holds a {initial.model}, this run trains a {config.model}"
        )
    if initial.config is None:
        return
    have, want = architecture(initial.config), architecture(config)
    for key in ARCH_KEYS:
        if have[key] != want[key]:
            raise ConfigError(
                f"init: {initial.source} was trained with {key} {have[key]!r}, this run has "
                f"{want[key]!r}; add {flag(key)} {have[key]} to start from it"
            )


def apply(model: nn.Module, initial: Trained, config: TrainConfig, classes: list[str]) -> str:
    """Load `initial` into `model`; the classifier keeps its fresh initialization when the
    classes differ. Returns the line that says what was loaded."""
    state = dict(initial.state)
    before = initial.data.get("classes") or []
    same_classes = list(before) == list(classes)
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
            f"; its classifier was for {len(before)} other classes: fc starts afresh "
            f"for these {len(classes)}"
        )
    return line
