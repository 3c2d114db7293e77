"""Load a trained model from a run directory, a checkpoint (.pt) or a weights file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from reslab.errors import CheckpointError, UserError
from reslab.io import clip, read_torch_file
from reslab.models.convert import recognize
from reslab.train.checkpoint import check_checkpoint, load_weights
from reslab.train.config import TrainConfig, saved_config
from reslab.train.run_dir import RunDir
from reslab.train.setup import build_model


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


def resolve(path: str | Path) -> Path:
    """A run directory stands for its final weights, or its last checkpoint if unfinished."""
    path = Path(path)
    if path.is_dir():
        found = RunDir(path).model_file()
        if found is None:
            raise UserError(
                f"{path} holds no model.safetensors or checkpoints/last.pt: not a run "
                "directory, or a run that has not finished an epoch yet"
            )
        return found
    if not path.exists():
        raise UserError(f"no such run directory or checkpoint: {path}")
    return path


def _read(source: Path) -> tuple[dict, dict]:
    """(weights, meta) of a weights file or a checkpoint; the EMA weights when there are any."""
    if source.suffix == ".safetensors":
        return load_weights(source)
    obj = read_torch_file(source)
    converted = recognize(obj)
    if converted is not None:  # another project's checkpoint of a known format
        # No images of the run's training split were held out: there is no validation split.
        config = {"model": converted.model, "dataset": converted.data["dataset"], "val_split": 0}
        config.update(converted.model_kwargs)
        config.pop("num_classes", None)
        return converted.state_dict, {"config": config, "data": converted.data}
    state = check_checkpoint(obj, source)
    meta = {"config": state["config"], "data": state["data"]}
    if not state.get("ema"):
        return state["model"], meta
    # AveragedModel keeps the model under "module." and counts updates in n_averaged.
    ema = state["ema"]
    return {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}, meta


def _assemble(weights: dict, meta: dict, source: Path) -> LoadedModel:
    if "config" not in meta or "data" not in meta:
        raise CheckpointError(f"{source} carries no reslab config: it was not written by reslab")
    config = saved_config(meta["config"])
    data = meta["data"]
    model = build_model(config, len(data["classes"]), data["in_channels"], data["image_size"])
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(
            f"{source} does not fit model {config.model!r} ({clip(str(e).splitlines()[0], 160)})"
        ) from None
    return LoadedModel(model.eval(), config, data, source)


def load(path: str | Path) -> LoadedModel:
    """The model saved at `path`, on the CPU and in eval mode: a run directory, a reslab .pt
    checkpoint or .safetensors file, or a checkpoint of a known foreign format (its
    normalization attached). A checkpoint's config is read with the meaning it had when saved."""
    source = resolve(path)
    weights, meta = _read(source)
    return _assemble(weights, meta, source)


def load_pretrained(name: str) -> LoadedModel:
    """Shipped weights by name: "resnet20" (its default tag) or "resnet20.TAG"."""
    from reslab.models import pretrained

    model, _, tag = name.partition(".")
    if model in pretrained.TORCHVISION_WEIGHTS and model not in pretrained.models_with_weights():
        raise UserError(
            f"torchvision's ImageNet weights for {model} load in Python "
            f"(reslab.create_model({model!r}, pretrained=True)); --pretrained takes the weights "
            f"reslab ships: {', '.join(pretrained.models_with_weights()) or 'none yet'}"
        )
    w = pretrained.find(model, tag or True)
    m = w.manifest
    data = {k: m[k] for k in ("classes", "mean", "std", "in_channels", "image_size")}
    data["dataset"] = m["config"]["dataset"]
    return _assemble(pretrained.read_verified(w), {"config": m["config"], "data": data}, w.file)
