"""Image-folder trees: ROOT/train/<class>/*.jpg|png and ROOT/test/<class>/ (or val/)."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch

from reslab.data.decode import IMAGE_SUFFIXES, decode_many, header_info
from reslab.data.sets import ImageSet
from reslab.errors import DataError


def find_root(path: str | Path) -> Path:
    """The folder holding train/ and test/ (or val/); one wrapping folder is looked through,
    as `tar xzf cifar10-jpeg.tar.gz` leaves cifar10/train/..."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    if not (root / "train").is_dir():
        inner = [p for p in root.iterdir() if p.is_dir() and (p / "train").is_dir()]
        if len(inner) == 1:
            root = inner[0]
    if not (root / "train").is_dir():
        raise DataError(
            f"{root} has no train/ subfolder; expected train/<class>/ and "
            "test/<class>/ (or val/<class>/) holding JPEG or PNG images"
        )
    if _test_dir(root) is None:
        raise DataError(f"{root} has no test/ or val/ subfolder next to train/")
    return root


def _test_dir(root: Path) -> Path | None:
    return next((root / n for n in ("test", "val") if (root / n).is_dir()), None)


def _listing(split_dir: Path) -> dict[str, list[os.DirEntry]]:
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    if not classes:
        raise DataError(f"{split_dir} has no class subfolders")
    listing = {}
    for name in classes:
        files = sorted(
            (
                e
                for e in os.scandir(split_dir / name)
                if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES
            ),
            key=lambda e: e.name,
        )
        if not files:
            raise DataError(f"class folder {split_dir / name} holds no JPEG or PNG images")
        listing[name] = files
    return listing


def scan(root: Path) -> tuple[dict, dict, str]:
    """Both splits' listings and a fingerprint of every file's name, size and mtime."""
    train, test = _listing(root / "train"), _listing(_test_dir(root))
    if set(train) != set(test):
        only_train = sorted(set(train) - set(test))
        only_test = sorted(set(test) - set(train))
        raise DataError(
            f"train and test classes differ in {root}: only in train {only_train}, "
            f"only in test {only_test}"
        )
    digest = hashlib.sha256()
    for split in (train, test):
        for name, entries in split.items():
            for e in entries:
                st = e.stat()
                digest.update(f"{name}/{e.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return train, test, digest.hexdigest()


def _channels(blobs: list[bytes]) -> int:
    """1 if every image is grayscale, else 3."""
    gray = all((info := header_info(b)) is not None and info[3] == 1 for b in blobs)
    return 1 if gray else 3


def load_split(
    listing: dict[str, list[os.DirEntry]],
    classes: list[str],
    channels: int | None,
    skip_corrupt: bool,
) -> tuple[ImageSet, int, int]:
    """Decode one split; returns (images, channels used, files skipped)."""
    paths = [Path(e.path) for name in classes for e in listing[name]]
    labels = [i for i, name in enumerate(classes) for _ in listing[name]]
    blobs = [p.read_bytes() for p in paths]
    channels = channels or _channels(blobs)
    images, kept = decode_many(paths, blobs, channels, skip_corrupt)
    if not images:
        raise DataError(f"no readable images in {paths[0].parent.parent}")
    size = images[0].shape[1:]
    for img, i in zip(images, kept, strict=True):
        if img.shape[1:] != size:
            raise DataError(
                f"{paths[i]} is {img.shape[2]}x{img.shape[1]} but the others are "
                f"{size[1]}x{size[0]}; all images must share one size"
            )
    skipped = len(paths) - len(kept)
    return ImageSet(torch.stack(images), torch.tensor([labels[i] for i in kept])), channels, skipped


def load_folder(root: Path, skip_corrupt: bool, scanned=None):
    """(train, test, classes, skipped) from a folder tree already checked by find_root."""
    train_list, test_list, _ = scanned or scan(root)
    classes = list(train_list)
    train, channels, skipped_train = load_split(train_list, classes, None, skip_corrupt)
    test, _, skipped_test = load_split(test_list, classes, channels, skip_corrupt)
    if test.images.shape[1:] != train.images.shape[1:]:
        raise DataError(
            f"test images in {root} are {tuple(test.images.shape[1:])}, train images "
            f"{tuple(train.images.shape[1:])}; they must match"
        )
    skipped = skipped_train + skipped_test
    if skipped:
        warnings.warn(f"skipped {skipped} unreadable image(s) in {root}", stacklevel=2)
    return train, test, classes, skipped
