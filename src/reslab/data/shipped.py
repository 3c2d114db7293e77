"""The CIFAR-10 sample shipped inside the package: original JPEG files packed into one
safetensors file (per split: concatenated bytes, int64 offsets, int64 labels; class names in the
header), decoded at load. scripts/make_cifar10_sample.py cuts it; sample/README.md says how."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from reslab.data.decode import decode_images, parse_header, screen
from reslab.data.sets import ImageSet
from reslab.errors import DataError

SAMPLE_FILE = Path(__file__).parent / "sample" / "cifar10-sample.safetensors"
SPLITS = ("train", "test")


def pack_jpegs(files: list[tuple[int, bytes]]) -> dict[str, torch.Tensor]:
    """(label, JPEG bytes) pairs -> {"jpeg": uint8 bytes, "offsets": int64 (N+1,), "labels"}."""
    sizes = torch.tensor([0] + [len(data) for _, data in files], dtype=torch.int64)
    blob = bytearray(b"".join(data for _, data in files))
    return {
        "jpeg": torch.frombuffer(blob, dtype=torch.uint8)
        if blob
        else torch.empty(0, dtype=torch.uint8),
        "offsets": sizes.cumsum(0),
        "labels": torch.tensor([label for label, _ in files], dtype=torch.int64),
    }


def unpack_jpegs(blob: torch.Tensor, offsets: torch.Tensor) -> list[bytes]:
    raw = blob.numpy().tobytes()
    bounds = offsets.tolist()
    return [raw[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def sample_fingerprint(path: Path = SAMPLE_FILE) -> str:
    """The sample's content hash (about 10 ms): a reinstalled but unchanged sample keeps its
    cache, a changed one gets a new one."""
    if not path.is_file():
        raise DataError(f"the shipped sample {path} is missing; reinstall reslab")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sample_classes(path: Path = SAMPLE_FILE) -> list[str]:
    """The sample's class names, from its header alone."""
    return _read(path, header_only=True)[1]


def _read(path: Path, header_only: bool = False) -> tuple[dict[str, torch.Tensor], list[str]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = [] if header_only else f.keys()
            tensors = {k: f.get_tensor(k) for k in keys}
            classes = json.loads((f.metadata() or {})["classes"])
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise DataError(
            f"the shipped sample {path} is unreadable ({e}); reinstall reslab"
        ) from None
    return tensors, classes


def _decode_split(path: Path, tensors: dict, split: str, skip_corrupt: bool) -> ImageSet:
    blobs = unpack_jpegs(tensors[f"{split}_jpeg"], tensors[f"{split}_offsets"])
    names = [f"{path}:{split}[{i}]" for i in range(len(blobs))]
    headers = [parse_header(b) for b in blobs]
    good = screen(names, headers, skip_corrupt)  # a None header fails here, as corrupt
    images, kept = decode_images(
        [names[i] for i in good],
        [blobs[i] for i in good],
        [headers[i] for i in good],
        3,
        skip_corrupt,
    )
    labels = tensors[f"{split}_labels"][[good[j] for j in kept]]
    return ImageSet(images, labels.contiguous())


def load_sample(skip_corrupt: bool, path: Path = SAMPLE_FILE):
    """(train, test, classes, images skipped) of the shipped sample."""
    tensors, classes = _read(path)
    train, test = (_decode_split(path, tensors, s, skip_corrupt) for s in SPLITS)
    skipped = sum(len(tensors[f"{s}_labels"]) for s in SPLITS) - len(train) - len(test)
    return train, test, classes, skipped
