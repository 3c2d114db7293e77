"""Turning JPEG/PNG bytes into uint8 tensors: header checks first (type, size, decompression
bombs), then torchvision's decoders, JPEGs in batched calls."""

from __future__ import annotations

import contextlib
import struct
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import torch

from reslab.errors import DataError
from reslab.io import clip

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
# Pillow's default decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS): an image whose header
# claims more pixels is refused before any decoding.
MAX_PIXELS = 89_478_485
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (ITU-T T.81, table B.1): C0-CF except DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field (T.81, B.1.1.3): TEM and RST0-7 (SOI/EOI never precede SOF).
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_CHUNK = 1024  # images per batched decode_jpeg call: bounds the cost of finding a bad file
SKIP_HINT = "replace or delete it, or pass --skip-corrupt"  # for files of a data set


class Header(NamedTuple):
    kind: str  # "jpeg" | "png"
    width: int  # 0 if the header is malformed
    height: int
    channels: int  # 1 (grayscale) or 3


def parse_header(data: bytes) -> Header | None:
    """Kind, size and channels from the first bytes; None if the magic bytes are neither JPEG's
    nor PNG's."""
    if data[:8] == _PNG_MAGIC:
        if len(data) < 26 or data[12:16] != b"IHDR":
            return Header("png", 0, 0, 0)
        width, height = struct.unpack(">II", data[16:24])
        return Header("png", width, height, 1 if data[25] in (0, 4) else 3)  # 0/4: gray(+alpha)
    if data[:2] != b"\xff\xd8":
        return None
    return _jpeg_frame(data)


def _jpeg_frame(data: bytes) -> Header:
    """Walk the marker segments up to the start-of-frame, which holds the size (T.81, B.2.2)."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            break  # not a marker where one must be: corrupt
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in _JPEG_STANDALONE:
            i += 2
        elif marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return Header("jpeg", width, height, 1 if data[i + 9] == 1 else 3)
        else:
            i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return Header("jpeg", 0, 0, 0)


def check_header(name: object, header: Header | None, hint: str = SKIP_HINT) -> None:
    """DataError for a file that is no JPEG or PNG, a header without a usable size, or one
    claiming too many pixels."""
    if header is None:
        raise DataError(f"{name} is not a JPEG or PNG image")
    if header.width * header.height == 0:
        raise DataError(
            f"{name} is corrupt or truncated (no image size in its {header.kind} header); {hint}"
        )
    if header.width * header.height > MAX_PIXELS:
        raise DataError(
            f"{name} claims {header.width}x{header.height} pixels, more than the {MAX_PIXELS:,} "
            "allowed (a decompression bomb?); refusing to decode it: delete or shrink it"
        )


def _mode(channels: int):
    # torchvision is imported here, not at module load: it costs seconds, and cache hits skip it.
    from torchvision.io import ImageReadMode

    return ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # torchvision 0.29 deprecates its image codecs in favour of TorchCodec and warns on every
    # call; they still work, and are all that torchvision 0.26 has.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        yield


def _reason(error: Exception) -> str:
    # torchvision's messages read "decode_jpeg, /path/decode_jpeg.cpp:171, Image is truncated".
    return clip(str(error).splitlines()[0].rsplit(", ", 1)[-1], 100) if str(error) else "unreadable"


def _to_uint8(image: torch.Tensor) -> torch.Tensor:
    # 16-bit PNGs decode to uint16; keep the high byte, as Pillow's 16-to-8-bit conversion does.
    return image if image.dtype == torch.uint8 else (image.to(torch.int32) >> 8).to(torch.uint8)


def decode_one(
    name: object, data: torch.Tensor, channels: int, hint: str = SKIP_HINT
) -> torch.Tensor:
    """One JPEG or PNG (uint8 bytes as a 1-D tensor) as uint8 (C, H, W)."""
    from torchvision.io import decode_image

    try:
        with _quiet():
            return _to_uint8(decode_image(data, mode=_mode(channels)))
    except RuntimeError as e:
        raise DataError(f"{name} is corrupt or truncated ({_reason(e)}); {hint}") from None


def read_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """One image file as uint8 (C, H, W) with `channels` 1 or 3; a DataError for anything else."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    check_header(path, parse_header(data), hint="replace it")
    image = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return decode_one(path, image, channels, hint="replace it")


def common_channels(headers: Sequence[Header]) -> int:
    """1 if every image is grayscale (then the set is 1-channel), else 3: gray ones become RGB."""
    return 1 if headers and all(h.channels == 1 for h in headers) else 3


def common_size(names: Sequence[object], headers: Sequence[Header]) -> tuple[int, int]:
    """The (height, width) all images share; a DataError naming one that differs otherwise."""
    sizes = Counter((h.height, h.width) for h in headers)
    (height, width), _ = sizes.most_common(1)[0]
    if len(sizes) > 1:
        i = next(i for i, h in enumerate(headers) if (h.height, h.width) != (height, width))
        raise DataError(
            f"{names[i]} is {headers[i].width}x{headers[i].height} pixels but most images are "
            f"{width}x{height}; all images must share one size (reslab does not resize: "
            "resize them first)"
        )
    return height, width


def _decode_chunk(
    names: Sequence[object], blobs: Sequence[bytes], headers: Sequence[Header], channels: int
) -> list[torch.Tensor | DataError]:
    """Each image decoded, or the DataError saying why it could not be."""
    from torchvision.io import decode_jpeg

    # One buffer and views into it: a tensor per file from bytearray() costs 25 us each.
    buffer = torch.frombuffer(bytearray(b"".join(blobs)), dtype=torch.uint8)
    ends = torch.tensor([len(b) for b in blobs]).cumsum(0).tolist()
    tensors = [buffer[end - len(b) : end] for b, end in zip(blobs, ends, strict=True)]
    results: list = [None] * len(blobs)
    jpegs = [i for i, h in enumerate(headers) if h.kind == "jpeg"]
    if jpegs:  # one call decodes a list of JPEGs (torchvision >= 0.19)
        try:
            with _quiet():
                decoded = decode_jpeg([tensors[i] for i in jpegs], mode=_mode(channels))
            for i, image in zip(jpegs, decoded, strict=True):
                results[i] = image
        except RuntimeError:
            pass  # one bad file fails the whole call: the loop below finds which
    for i, done in enumerate(results):
        if done is None:  # PNGs, and every image of a chunk whose batched call failed
            try:
                results[i] = decode_one(names[i], tensors[i], channels)
            except DataError as e:
                results[i] = e
    return results


def decode_images(
    names: Sequence[object],
    blobs: Sequence[bytes],
    headers: Sequence[Header],
    channels: int,
    skip_corrupt: bool,
) -> tuple[torch.Tensor, list[int]]:
    """Images whose headers passed check_header -> uint8 (K, C, H, W) and the K indices kept
    (all of them unless skip_corrupt dropped unreadable ones)."""
    height, width = common_size(names, headers)
    out = torch.empty((len(blobs), channels, height, width), dtype=torch.uint8)
    kept: list[int] = []
    for start in range(0, len(blobs), _JPEG_CHUNK):
        part = slice(start, start + _JPEG_CHUNK)
        results = _decode_chunk(names[part], blobs[part], headers[part], channels)
        good = []
        for i, image in enumerate(results, start):
            if not isinstance(image, DataError) and image.shape[1:] != (height, width):
                image = DataError(
                    f"{names[i]} is corrupt (its header and its pixels disagree on its size); "
                    + SKIP_HINT
                )
            if isinstance(image, DataError):
                if not skip_corrupt:
                    raise image
                continue
            good.append(image)
            kept.append(i)
        if good:  # one copy per chunk into the output: per-image copies cost 15 us each
            torch.stack(good, out=out[len(kept) - len(good) : len(kept)])
    return out[: len(kept)], kept


def screen(
    names: Sequence[object], headers: Sequence[Header | None], skip_corrupt: bool
) -> list[int]:
    """Indices of the images whose headers pass check_header; the others raise, or with
    skip_corrupt are left out."""
    good = []
    for i, header in enumerate(headers):
        try:
            check_header(names[i], header)
            good.append(i)
        except DataError:
            if not skip_corrupt:
                raise
    return good
