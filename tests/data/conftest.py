"""Data fixtures: the shipped sample's real JPEGs written out as folder trees; small crafted
image sets. (The sample's JPEGs and its decoded copy are shared: tests/conftest.py.)"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from reslab.data import ImageSet, load_dataset
from tests.conftest import sample_jpegs


def write_tree(root: Path, per_class: int = 6, classes=("cat", "dog", "ship"), test_name="test"):
    """root/train/<class>/NNNN.jpg and root/<test_name>/<class>/NNNN.jpg of real CIFAR-10 JPEGs."""
    jpegs = sample_jpegs()
    for split, count, offset in (("train", per_class, 0), (test_name, per_class // 2, per_class)):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i, data in enumerate(jpegs[name][offset : offset + count]):
                (folder / f"{i:04d}.jpg").write_bytes(data)
    return root


def png_bytes(array, mode: str | None = None) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def tree(tmp_path):
    """18 training and 9 test images of 3 classes; data_dir is tmp_path / 'dd'."""
    return write_tree(tmp_path / "imgs")


@pytest.fixture(scope="session")
def sample(data_dir):
    """The shipped sample, decoded once for the whole session (into data_dir's cache)."""
    return load_dataset("cifar10-sample", data_dir)


def index_set(n: int = 50, c: int = 3, h: int = 8, w: int = 8) -> ImageSet:
    """Images whose pixels differ from image to image, labels = image number."""
    images = torch.arange(n * c * h * w, dtype=torch.int64).remainder(251).to(torch.uint8)
    return ImageSet(images.view(n, c, h, w).contiguous(), torch.arange(n))
