"""The decoded-data cache: one safetensors file per source under DATA_DIR/cache/, holding the
uint8 splits, and in its header the source's fingerprint (key), classes, mean/std and checksums.

safetensors holds raw tensors and a JSON header only, so reading a cache never runs code. A file
that fails to parse, or to match its checksums and shapes, is rebuilt with a warning; a cache of
another key (the source changed) is silently overwritten. Writes are atomic (reslab.io).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
import zlib
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from reslab.data.sets import DataSplits, ImageSet
from reslab.io import atomic_write, clip

FORMAT = "reslab-data-cache/2"
_SPLITS = ("train", "test")


def cache_path(data_dir: Path, name: str) -> Path:
    """One file per source name, readable by people: the name's tail plus a hash of all of it."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[-48:].strip("_.")
    return (
        data_dir / "cache" / f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:12]}.safetensors"
    )


def _checksums(tensors: dict[str, torch.Tensor]) -> dict[str, int]:
    # CRC-32 catches flipped or zeroed bytes; about 0.15 s over full CIFAR-10's 184 MB here.
    return {
        k: zlib.crc32(t.contiguous().view(-1).view(torch.uint8).numpy()) for k, t in tensors.items()
    }


def _tensors(splits: DataSplits) -> dict[str, torch.Tensor]:
    return {
        f"{s}_{part}": getattr(getattr(splits, s), part).contiguous()
        for s in _SPLITS
        for part in ("images", "labels")
    }


def write_cache(path: Path, splits: DataSplits, key: str) -> None:
    """Write atomically; a data dir that cannot be written only costs the cache (a warning)."""
    tensors = _tensors(splits)
    meta = {
        "format": FORMAT,
        "key": key,
        "name": splits.name,
        "classes": json.dumps(splits.classes),
        "mean": json.dumps(splits.mean),
        "std": json.dumps(splits.std),
        "skipped": str(splits.skipped),
        "checksums": json.dumps(_checksums(tensors)),
        "digests": json.dumps(splits.digests),
    }
    try:
        atomic_write(path, lambda f: f.write(save(tensors, metadata=meta)))  # umask honoured
    except OSError as e:
        warnings.warn(
            f"could not write the data cache {path} ({e.strerror or e}); working without it",
            stacklevel=3,
        )


def _header(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def _validate(splits: DataSplits, tensors: dict, meta: dict) -> None:
    """ValueError unless the tensors are the ones written: checksums, dtypes, shapes, labels."""
    if _checksums(tensors) != json.loads(meta["checksums"]):
        raise ValueError("checksum mismatch")
    shapes = {tuple(s.images.shape[1:]) for s in (splits.train, splits.test)}
    channels = splits.train.images.shape[1]
    if len(shapes) != 1 or len(splits.mean) != channels or len(splits.std) != channels:
        raise ValueError("inconsistent shapes")
    for s in (splits.train, splits.test):
        if len(s) and not 0 <= int(s.labels.min()) <= int(s.labels.max()) < splits.num_classes:
            raise ValueError("labels out of range")


def read_cache(path: Path, key: str) -> DataSplits | None:
    """The cached splits, or None: no cache, a stale one (other key), or a broken one (warned)."""
    try:
        meta = _header(path)
    except FileNotFoundError:
        return None
    except (SafetensorError, OSError, ValueError) as e:
        return _broken(path, e)
    if meta.get("format") != FORMAT or meta.get("key") != key:
        return None
    try:
        tensors = load_file(str(path))  # memory-mapped: pages are read as they are used
        splits = DataSplits(
            name=meta["name"],
            train=ImageSet(tensors["train_images"], tensors["train_labels"]),
            test=ImageSet(tensors["test_images"], tensors["test_labels"]),
            classes=json.loads(meta["classes"]),
            mean=tuple(json.loads(meta["mean"])),
            std=tuple(json.loads(meta["std"])),
            skipped=int(meta["skipped"]),
            digests=json.loads(meta.get("digests", "{}")),  # computed here for older caches
        )
        _validate(splits, tensors, meta)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        return _broken(path, e)
    return splits


def _broken(path: Path, error: Exception) -> None:
    warnings.warn(
        f"data cache {path} is unreadable ({clip(str(error), 80)}); rebuilding it", stacklevel=3
    )
    return None
