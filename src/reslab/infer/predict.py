"""Classify image files with a saved model, as `reslab predict` and `reslab.predict` do.

An image is prepared as torchvision's evaluation transforms prepare one: decoded to the model's
channels, scaled to [0, 1], resized keeping its aspect ratio until it just covers the model's
input (for a square input: the shorter side to its size; antialiased bilinear, as
`transforms.v2.Resize` on a float image), centre-cropped to that size, then normalized with the
training statistics inside `Normalized`, the wrapper an exported graph carries too.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reslab.data.decode import Header, check_header, decode_one, parse_header
from reslab.errors import DataError
from reslab.infer.load import LoadedModel, load
from reslab.io import clip
from reslab.models.export import Normalized
from reslab.run.device import resolve_device


@dataclass
class Prediction:
    """The most likely classes of one image, most likely first."""

    image: str
    top: list[tuple[str, float]]  # (class name, probability)

    def to_dict(self) -> dict:
        return {"image": self.image, "top": [{"class": c, "prob": p} for c, p in self.top]}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None


def _pillow_decode(path: Path, data: bytes, channels: int) -> torch.Tensor:
    """Any format Pillow reads (its first frame), converted to grayscale or RGB (alpha dropped)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns above its pixel limit; check_header refuses those below, unwarned.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # Image.open reads only the header: the size is checked before any decoding.
                kind = (image.format or "image").lower()
                check_header(path, Header(kind, *image.size, 0), hint="replace it")
                pixels = np.array(image.convert("L" if channels == 1 else "RGB"))
    except UnidentifiedImageError:
        start = f"unknown format; it starts {data[:16]!r}" if data else "the file is empty"
        raise DataError(f"{path} is not an image Pillow can read ({start})") from None
    except Image.DecompressionBombError as e:  # more than twice Pillow's limit: refused in open
        raise DataError(
            f"{path} is too large ({str(e).rstrip('.')}); refusing to decode it: delete or "
            "shrink it"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:  # how Pillow reports bad pixel data
        raise DataError(
            f"{path} is corrupt or truncated ({clip(str(e), 100)}); replace it"
        ) from None
    image = torch.from_numpy(pixels)
    return image[None] if image.ndim == 2 else image.permute(2, 0, 1).contiguous()


def read_any_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """One image file as uint8 (C, H, W), `channels` 1 or 3. JPEG and PNG go through the checks
    and decoders that read training data (the same pixels); any other format Pillow reads."""
    path = Path(path)
    data = _read_bytes(path)
    header = parse_header(data)
    if header is None:
        return _pillow_decode(path, data, channels)
    check_header(path, header, hint="replace it")
    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return decode_one(path, encoded, channels, hint="replace it")


def fit(image: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A float (C, h, w) image resized, keeping its aspect ratio, until it just covers `size`
    (H, W), then centre-cropped to it: for H == W, torchvision's v2 Resize(H) + CenterCrop(H).
    An image already of that size is returned as it is."""
    (height, width), (h, w) = size, image.shape[-2:]
    if (h, w) == (height, width):
        return image
    # The side that binds gets the target exactly; the other is rounded down, as torchvision's
    # int(size * long / short), in integers so that no float rounding can put it below target.
    new = (height, height * w // h) if height * w >= width * h else (width * h // w, width)
    if new != (h, w):
        image = F.interpolate(
            image[None], size=new, mode="bilinear", antialias=True, align_corners=False
        )[0]
    # Python's round (half to even), as torchvision's centre crop computes its corner.
    top, left = round((new[0] - height) / 2), round((new[1] - width) / 2)
    return image[:, top : top + height, left : left + width]


def load_images(paths: Sequence[str | Path], data: dict) -> torch.Tensor:
    """Image files as the model takes them before normalization: float (N, C, H, W) in [0, 1],
    with the model's channels and size (`data` as LoadedModel.data). What an exported graph
    with the default input convention takes."""
    size = tuple(data["image_size"])
    images = [read_any_image(p, data["in_channels"]).float().div_(255) for p in paths]
    return torch.stack([fit(x, size) for x in images])


@torch.no_grad()
def predict(
    model: str | Path | LoadedModel,
    images: Sequence[str | Path],
    top_k: int = 3,
    device: str = "auto",
) -> list[Prediction]:
    """The `top_k` classes of each image file, with their probabilities, computed on `device`
    (one of reslab.train.runtime.DEVICES; "auto" is CUDA where there is one)."""
    loaded = model if isinstance(model, LoadedModel) else load(model)
    dev = resolve_device(device)
    if not images:
        return []
    classes = loaded.classes
    batch = load_images(images, loaded.data).to(dev)
    with loaded.on(dev) as model:
        net = Normalized(model, loaded.data["mean"], loaded.data["std"]).to(dev).eval()
        probs = torch.softmax(net(batch), dim=1).cpu()  # host-device sync
    values, indices = probs.topk(min(top_k, len(classes)), dim=1)
    return [
        Prediction(
            str(path),
            [(classes[i], round(v, 6)) for v, i in zip(vals.tolist(), idx.tolist(), strict=True)],
        )
        for path, vals, idx in zip(images, values, indices, strict=True)
    ]
