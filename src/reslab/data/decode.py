"""Reading image files: header checks first (type, size, decompression bombs), then
torchvision's decoders, batched for JPEG."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import torch

from reslab.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# Pillow's default decompression-bomb limit: an image claiming more pixels is refused unread.
MAX_PIXELS = 89_478_485
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def header_info(data: bytes) -> tuple[str, int, int, int] | None:
    """(kind, width, height, channels) from a JPEG or PNG header; None if it is neither."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 26 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        color = data[25]
        return "png", width, height, 1 if color in (0, 4) else 3
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return "jpeg", 0, 0, 0  # malformed marker stream: let the decoder report it
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return "jpeg", width, height, 1 if data[i + 9] == 1 else 3
        i += 2 + length
    return "jpeg", 0, 0, 0


def _check(path: Path, data: bytes) -> tuple[str, int]:
    info = header_info(data)
    if info is None:
        raise DataError(f"{path} is not a JPEG or PNG image")
    kind, width, height, channels = info
    if width * height > MAX_PIXELS:
        raise DataError(
            f"{path} claims {width}x{height} pixels, more than the {MAX_PIXELS:,} "
            "allowed (a decompression bomb?); refusing to decode it"
        )
    return kind, channels


def read_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """One image as uint8 (C, H, W) with `channels` 1 or 3; a clear error for anything else."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    _check(path, data)
    return _decode_one(path, data, _mode(channels))


def _mode(channels: int):
    # torchvision is imported here, not at module load: it costs about a second.
    from torchvision.io import ImageReadMode

    return ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB


def _decode_one(path: Path, data: bytes, mode) -> torch.Tensor:
    from torchvision.io import decode_image

    try:
        return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode)
    except RuntimeError as e:
        raise DataError(f"{path} is corrupt or truncated ({str(e).splitlines()[0][:80]})") from None


def decode_many(
    paths: Sequence[Path], blobs: Sequence[bytes], channels: int, skip_corrupt: bool
) -> tuple[list[torch.Tensor], list[int]]:
    """Decode many files; returns the images and the indices of those kept."""
    from torchvision.io import decode_jpeg

    mode = _mode(channels)
    kinds, good = [], []
    for i, (path, data) in enumerate(zip(paths, blobs, strict=True)):
        try:
            kinds.append(_check(path, data)[0])
            good.append(i)
        except DataError:
            if not skip_corrupt:
                raise
    jpegs = [i for i, k in zip(good, kinds, strict=True) if k == "jpeg"]
    decoded: dict[int, torch.Tensor] = {}
    try:  # one batched call for all JPEGs; on failure, find the culprit file by file
        tensors = [torch.frombuffer(bytearray(blobs[i]), dtype=torch.uint8) for i in jpegs]
        decoded.update(zip(jpegs, decode_jpeg(tensors, mode=mode), strict=True) if jpegs else [])
    except RuntimeError:
        decoded.clear()
    kept = []
    for i in good:
        if i not in decoded:
            try:
                decoded[i] = _decode_one(paths[i], blobs[i], mode)
            except DataError:
                if not skip_corrupt:
                    raise
                continue
        kept.append(i)
    return [decoded[i] for i in kept], kept
