"""Fixtures: real CIFAR-10 JPEG bytes from the shipped sample, written out as folder trees."""

from pathlib import Path

import pytest
from safetensors.torch import load_file

from reslab.data.sources import SAMPLE_FILE


def sample_jpegs(split: str = "train") -> list[tuple[int, bytes]]:
    t = load_file(str(SAMPLE_FILE))
    raw = t[f"{split}_jpeg"].numpy().tobytes()
    bounds = t[f"{split}_offsets"].tolist()
    labels = t[f"{split}_labels"].tolist()
    return [(labels[i], raw[bounds[i] : bounds[i + 1]]) for i in range(len(labels))]


CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_tree(root: Path, per_class: int = 6, classes=("cat", "dog", "ship"), test_name="test"):
    """root/train/<class>/*.jpg and root/<test_name>/<class>/*.jpg from real sample images."""
    by_class: dict[int, list[bytes]] = {}
    for label, data in sample_jpegs():
        by_class.setdefault(label, []).append(data)
    for split, count in (("train", per_class), (test_name, max(2, per_class // 2))):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i, data in enumerate(by_class[CLASSES.index(name)][:count]):
                (folder / f"{i:04d}.jpg").write_bytes(data)
    return root


@pytest.fixture
def tree(tmp_path):
    return write_tree(tmp_path / "imgs")
