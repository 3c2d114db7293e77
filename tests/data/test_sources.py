"""Loading data sets: the shipped sample, folder trees, the cache, splits and every bad input."""

import os
import socket
import time

import pytest
import torch

from reslab.data import default_val_split, load_dataset, split_validation
from reslab.data import sources as sources_module
from reslab.data.decode import MAX_PIXELS, read_image
from reslab.errors import DataError

from .conftest import write_tree


def test_shipped_sample_is_real_balanced_cifar10(tmp_path):
    d = load_dataset("cifar10-sample", tmp_path)
    assert d.train.images.shape == (4000, 3, 32, 32) and d.train.images.dtype == torch.uint8
    assert d.test.images.shape == (1000, 3, 32, 32)
    assert d.classes[:3] == ["airplane", "automobile", "bird"] and d.num_classes == 10
    assert d.train.labels.bincount().tolist() == [400] * 10
    assert d.test.labels.bincount().tolist() == [100] * 10
    # CIFAR-10's channel means are about 0.49, 0.48, 0.45 (the data README).
    assert d.mean == pytest.approx((0.49, 0.48, 0.45), abs=0.015)
    assert all(0.2 < s < 0.3 for s in d.std)
    assert sources_module.SAMPLE_FILE.stat().st_size < 6_000_000


def test_folder_tree_of_real_jpegs(tree, tmp_path):
    d = load_dataset(f"folder:{tree}", tmp_path / "cache")
    assert d.classes == ["cat", "dog", "ship"]
    assert d.train.images.shape == (18, 3, 32, 32) and len(d.test) == 9
    assert d.train.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert d.name == f"folder:{tree.resolve()}"


def test_folder_with_val_and_a_wrapping_folder(tmp_path):
    write_tree(tmp_path / "outer" / "cifar", test_name="val")
    d = load_dataset(f"folder:{tmp_path / 'outer'}", tmp_path / "cache")
    assert len(d.test) == 9


def test_png_and_grayscale_folder(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for c in ("a", "b"):
            (tmp_path / "g" / split / c).mkdir(parents=True)
            for i in range(3):
                img = Image.new("L", (10, 12), color=40 * i + (c == "b") * 100)
                img.save(tmp_path / "g" / split / c / f"{i}.png")
    (tmp_path / "g" / "train" / "a" / "notes.txt").write_text("not an image")  # ignored
    d = load_dataset(f"folder:{tmp_path / 'g'}", tmp_path / "cache")
    assert d.train.images.shape == (6, 1, 12, 10) and d.in_channels == 1


def test_cache_is_used_and_invalidated(tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_dataset(f"folder:{tree}", cache)
    import reslab.data.folder as folder

    def no_decoding(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder, "load_split", no_decoding)
    again = load_dataset(f"folder:{tree}", cache)
    assert torch.equal(first.train.images, again.train.images) and first.mean == again.mean
    extra = tree / "train" / "cat" / "extra.jpg"
    extra.write_bytes((tree / "train" / "cat" / "0000.jpg").read_bytes())
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(f"folder:{tree}", cache)


def test_corrupt_cache_is_rebuilt(tree, tmp_path):
    cache = tmp_path / "cache"
    first = load_dataset(f"folder:{tree}", cache)
    (path,) = (cache / "cache").iterdir()
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip bits inside the image bytes
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="rebuilding"):
        again = load_dataset(f"folder:{tree}", cache)
    assert torch.equal(first.train.images, again.train.images)
    path.write_bytes(bytes(data[:1000]))  # truncated
    with pytest.warns(UserWarning, match="rebuilding"):
        load_dataset(f"folder:{tree}", cache)


def test_unwritable_data_dir_still_loads(tree, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):  # running as root: permissions do not bind
            pytest.skip("permissions are not enforced for this user")
        with pytest.warns(UserWarning, match="could not write"):
            assert len(load_dataset(f"folder:{tree}", ro).train) == 18
    finally:
        os.chmod(ro, 0o700)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: None, None),
        (lambda t: __import__("shutil").rmtree(t / "test"), "no test/ or val/"),
        (lambda t: __import__("shutil").rmtree(t / "train"), "no train/"),
        (lambda t: [p.unlink() for p in (t / "train" / "dog").iterdir()], "holds no JPEG"),
        (lambda t: (t / "test" / "dog").rename(t / "test" / "horse"), "classes differ"),
        (
            lambda t: (t / "train" / "cat" / "0001.jpg").write_bytes(
                (t / "train" / "cat" / "0001.jpg").read_bytes()[:200]
            ),
            "0001.jpg is corrupt",
        ),
        (
            lambda t: (t / "train" / "cat" / "0002.jpg").write_bytes(b"\xff\xd8garbage" * 10),
            "0002.jpg",
        ),
    ],
)
def test_bad_folders_are_data_errors(tree, tmp_path, mutate, message):
    mutate(tree)
    if message is None:
        load_dataset(f"folder:{tree}", tmp_path / "c")
        return
    with pytest.raises(DataError, match=message):
        load_dataset(f"folder:{tree}", tmp_path / "c")


def test_missing_folder_and_unknown_name(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_dataset(f"folder:{tmp_path / 'nope'}", tmp_path)
    with pytest.raises(DataError, match="known: cifar10, cifar100"):
        load_dataset("imagenet-1k", tmp_path)


def test_skip_corrupt_skips_and_counts(tree, tmp_path):
    (tree / "train" / "cat" / "0001.jpg").write_bytes(b"\xff\xd8\xff\xe0broken")
    with pytest.warns(UserWarning, match="skipped 1"):
        d = load_dataset(f"folder:{tree}", tmp_path / "c", skip_corrupt=True)
    assert d.skipped == 1 and len(d.train) == 17


def test_decompression_bomb_is_refused_unread(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)  # claims 2.5e9 pixels
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    with pytest.raises(DataError, match=f"more than the {MAX_PIXELS:,}"):
        read_image(path)


def test_torchvision_set_without_network_fails_fast_naming_the_file(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    start = time.monotonic()
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", tmp_path)
    assert time.monotonic() - start < 10
    assert "cifar-10-python.tar.gz" in str(e.value) and str(tmp_path / "cifar10") in str(e.value)
    assert "\n" not in str(e.value)


def test_torchvision_set_found_locally(tmp_path, monkeypatch):
    """A local copy in torchvision's own format is read through torchvision's class."""
    import numpy as np
    import torchvision.datasets as tvd

    class FakeCIFAR:
        classes = [f"c{i}" for i in range(10)]

        def __init__(self, root, download, train):
            n = 20 if train else 10
            self.data = np.full((n, 32, 32, 3), 7 if train else 9, dtype=np.uint8)
            self.targets = [i % 10 for i in range(n)]

    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "data_batch_1").write_bytes(b"x")
    d = load_dataset("cifar10", tmp_path)
    assert d.train.images.shape == (20, 3, 32, 32) and d.test.images.unique().tolist() == [9]
    assert d.classes == FakeCIFAR.classes and default_val_split("cifar10") == 5000


def test_stratified_split_is_balanced_seeded_and_disjoint(tmp_path):
    d = load_dataset("cifar10-sample", tmp_path)
    train, val = split_validation(d.train, 500, seed=0)
    assert len(train) == 3500 and len(val) == 500
    assert val.labels.bincount().tolist() == [50] * 10
    train2, val2 = split_validation(d.train, 500, seed=0)
    assert torch.equal(val.images, val2.images)
    assert not torch.equal(val.images, split_validation(d.train, 500, seed=1)[1].images)
    assert split_validation(d.train, 0, seed=0)[1].images.shape[0] == 0
    with pytest.raises(DataError, match="val_split"):
        split_validation(d.train, 4000, seed=0)
