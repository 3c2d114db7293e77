"""Load a trained model from a run directory, a checkpoint (.pt) or a weights file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from reslab.errors import CheckpointError, UserError
from reslab.train.checkpoint import load_checkpoint, load_weights
from reslab.train.config import TrainConfig, saved_config
from reslab.train.setup import build_model


@dataclass
class LoadedModel:
    model: nn.Module  # on the CPU, in eval mode
    config: TrainConfig
    data: dict  # dataset, classes, mean, std, in_channels, image_size
    source: Path


def resolve(path: str | Path) -> Path:
    """A run directory stands for its final weights, or its last checkpoint if unfinished."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "model.safetensors", path / "checkpoints" / "last.pt"):
            if candidate.is_file():
                return candidate
        raise UserError(
            f"{path} holds no model.safetensors or checkpoints/last.pt: not a run "
            "directory, or a run that has not finished an epoch yet"
        )
    if not path.exists():
        raise UserError(f"no such run directory or checkpoint: {path}")
    return path


def load(path: str | Path) -> LoadedModel:
    source = resolve(path)
    if source.suffix == ".safetensors":
        weights, meta = load_weights(source)
    else:
        state = load_checkpoint(source)
        meta = {"config": state["config"], "data": state["data"]}
        weights = state["ema"] if state.get("ema") else state["model"]
        # AveragedModel keeps the model under "module." and counts updates in n_averaged.
        if state.get("ema"):
            weights = {
                k.removeprefix("module."): v for k, v in weights.items() if k.startswith("module.")
            }
    if "config" not in meta or "data" not in meta:
        raise CheckpointError(f"{source} carries no reslab config: it was not written by reslab")
    config = saved_config(meta["config"])
    data = meta["data"]
    model = build_model(config, len(data["classes"]), data["in_channels"])
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(
            f"{source} does not fit model {config.model!r} ({str(e).splitlines()[0][:160]})"
        ) from None
    return LoadedModel(model.eval(), config, data, source)
