"""The checkpoint and final-weights formats: written atomically, read without ever running code
from the file.

`torch.load(..., weights_only=True)` unpickles only tensors and plain containers, so a file
carrying a code-execution payload is refused instead of run; weights ship as safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from reslab.errors import CheckpointError
from reslab.io import atomic_write, clip, read_torch_file

FORMAT = "reslab-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, state: dict) -> Path:
    state = {"format": FORMAT, "version": VERSION, **state}
    return _write(path, lambda f: torch.save(state, f))


def _write(path: str | Path, write) -> Path:
    try:
        return atomic_write(path, write)
    except OSError as e:  # e.g. a full disk: the rename never happened, the old file stands
        raise CheckpointError(
            f"could not write {path}: {e.strerror or e}; the previous file "
            "there is intact. Free some space and resume"
        ) from None


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    return check_checkpoint(read_torch_file(path), path)


def is_checkpoint(content: object) -> bool:
    """Whether the content of a torch file is a reslab checkpoint (of any version)."""
    return isinstance(content, dict) and content.get("format") == FORMAT


def check_checkpoint(state: object, path: Path) -> dict:
    """`state`, read from `path`, if it is a reslab checkpoint this version can read."""
    if not is_checkpoint(state):
        raise CheckpointError(f"{path} is not a reslab checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer reslab (format {state['version']})")
    return state


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], meta: dict) -> Path:
    """Final weights as safetensors, with the config and data facts as JSON in the header."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    metadata = {"format": FORMAT, "meta": json.dumps(meta)}
    return _write(path, lambda f: f.write(save(tensors, metadata=metadata)))


def weights_header(path: str | Path) -> dict[str, str]:
    """The header of a safetensors file (reslab's: "format" and "meta", the JSON of the run's
    config and data), read without its tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({clip(str(e), 120)})"
        ) from None


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors of a weights file and its reslab header ({} for a bare safetensors file)."""
    header = weights_header(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({clip(str(e), 120)})"
        ) from None
    try:
        meta = json.loads(header.get("meta", "{}"))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path} has a malformed reslab header") from None
    return tensors, meta
