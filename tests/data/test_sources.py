"""The registry: the shipped sample, torchvision's sets (offline), names, defaults."""

import gzip
import hashlib
import json
import pickle
import re
import socket
import struct
import threading
import time

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from safetensors import safe_open

import reslab.data.torchvision_sets as tv_sets
from reslab.data import default_data_dir, default_val_split, list_datasets, load_dataset
from reslab.data.shipped import SAMPLE_FILE
from reslab.errors import DataError
from tests.conftest import CLASSES

from .conftest import write_tree


def test_the_shipped_sample_is_real_balanced_cifar10(sample):
    assert sample.name == "cifar10-sample" and sample.classes == CLASSES
    assert sample.train.images.shape == (4000, 3, 32, 32) and sample.test.images.shape[0] == 1000
    assert sample.train.labels.bincount().tolist() == [400] * 10
    assert sample.test.labels.bincount().tolist() == [100] * 10
    # CIFAR-10's channel means are 0.491, 0.482, 0.447 (stds 0.247, 0.243, 0.261).
    assert sample.mean == pytest.approx((0.491, 0.482, 0.447), abs=0.012)
    assert sample.std == pytest.approx((0.247, 0.243, 0.261), abs=0.012)
    assert SAMPLE_FILE.stat().st_size < 6_000_000


def test_the_sample_readme_tells_how_it_was_made():
    readme = (SAMPLE_FILE.parent / "README.md").read_text()
    with safe_open(str(SAMPLE_FILE), framework="pt") as f:
        meta = f.metadata()
    assert meta["source_sha256"] in readme and "make_cifar10_sample.py" in readme
    assert "4,000" in readme and "1,000" in readme and json.loads(meta["classes"]) == CLASSES
    size_mb = re.search(r"([\d.]+) MB", readme).group(1)
    assert size_mb == f"{SAMPLE_FILE.stat().st_size / 1e6:.2f}"
    assert hashlib.sha256(SAMPLE_FILE.read_bytes()).hexdigest() in readme


def test_names_defaults_and_unknown_names(tmp_path, monkeypatch):
    assert list_datasets() == ["cifar10", "cifar100", "mnist", "fashion-mnist", "svhn",
                               "cifar10-sample"]  # fmt: skip
    assert [default_val_split(n) for n in list_datasets()] == [5000] * 5 + [500]
    with pytest.raises(DataError, match=r"unknown data set 'imagenet'; known: cifar10, .*folder:"):
        load_dataset("imagenet", tmp_path)
    with pytest.raises(DataError, match=f"did you mean folder:{tmp_path}"):
        load_dataset(str(tmp_path), tmp_path)
    with pytest.raises(DataError, match="unknown data set"):
        default_val_split("imagenet")
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path / "env"))
    assert default_data_dir() == tmp_path / "env"
    monkeypatch.delenv("RESLAB_DATA")
    assert default_data_dir().parts[-2:] == (".cache", "reslab")


def test_folder_sets_hold_out_ten_percent(tmp_path, monkeypatch):
    root = write_tree(tmp_path / "t", per_class=10)  # 30 training images
    assert default_val_split(f"folder:{root}") == 3  # counted from the folder
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path / "dd"))
    d = load_dataset(f"folder:{root}")  # data_dir from $RESLAB_DATA
    assert (tmp_path / "dd" / "cache").is_dir()
    assert default_val_split(d.name) == 3 and default_val_split(d.name, n_train=200) == 20


@pytest.fixture
def offline(monkeypatch):
    """No network: every connection attempt fails at once."""

    def refuse(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)


def test_no_network_no_copy_is_a_quick_one_line_error_naming_file_and_folder(tmp_path, offline):
    start = time.monotonic()
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", tmp_path)
    assert time.monotonic() - start < 5
    message = str(e.value)
    assert "cifar-10-python.tar.gz" in message and "https://www.cs.toronto.edu/~kriz/" in message
    assert str(tmp_path / "cifar10") in message and "\n" not in message


def test_a_stalled_connection_does_not_hang(tmp_path, monkeypatch):
    release = threading.Event()

    def stall(*args, **kwargs):  # as name resolution does on some offline machines
        release.wait(30)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", stall)
    start = time.monotonic()
    try:
        with pytest.raises(DataError, match="cannot be reached"):
            load_dataset("mnist", tmp_path)
        assert time.monotonic() - start < tv_sets.REACH_TIMEOUT_S + 2
    finally:
        release.set()


def test_download_off_never_touches_the_network(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    with pytest.raises(DataError, match=r"downloading is off; get train-images-idx3-ubyte\.gz"):
        load_dataset("mnist", tmp_path, download=False)


def test_a_failed_download_is_a_data_error(tmp_path, offline, monkeypatch):
    monkeypatch.setattr(tv_sets, "_reachable", lambda url: True)
    with pytest.raises(DataError, match="getting cifar100 failed .*cifar-100-python.tar.gz"):
        load_dataset("cifar100", tmp_path)
    assert socket.getdefaulttimeout() is None  # the stall timeout was put back


def test_svhn_without_scipy_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(tv_sets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"svhn needs the scipy package; install it"):
        load_dataset("svhn", tmp_path)


def _idx(array: np.ndarray) -> bytes:
    """MNIST's idx format (yann.lecun.com/exdb/mnist): magic 0x08 (ubyte) + ndim, sizes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _mnist_files(n_train=12, n_test=6, size=8):
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        files[f"{prefix}-images-idx3-ubyte"] = _idx(rng.integers(0, 256, (n, size, size)))
        files[f"{prefix}-labels-idx1-ubyte"] = _idx(np.arange(n) % 10)
    return files


def test_mnist_in_torchvisions_own_format_loads_then_comes_from_the_cache(tmp_path, offline,
                                                                          monkeypatch):  # fmt: skip
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, data in _mnist_files().items():
        (raw / name).write_bytes(data)
    d = load_dataset("mnist", tmp_path)
    assert d.train.images.shape == (12, 1, 8, 8) and d.test.images.shape == (6, 1, 8, 8)
    assert d.in_channels == 1 and d.classes[0] == "0 - zero" and d.train.labels[11] == 1
    monkeypatch.setattr(tvd, "MNIST", None)  # a cache hit must not need torchvision's class
    assert torch.equal(load_dataset("mnist", tmp_path).train.images, d.train.images)


def test_archives_put_in_place_by_hand_load_offline_and_damage_is_named(tmp_path, offline,
                                                                          monkeypatch):  # fmt: skip
    raw = tmp_path / "fashion-mnist" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    resources = []
    for name, data in _mnist_files().items():
        packed = gzip.compress(data)
        (raw / f"{name}.gz").write_bytes(packed)
        resources.append((f"{name}.gz", hashlib.md5(packed).hexdigest()))
    monkeypatch.setattr(tvd.FashionMNIST, "resources", resources)  # md5s of our small files
    d = load_dataset("fashion-mnist", tmp_path)
    assert len(d.train) == 12 and d.classes[0] == "T-shirt/top"
    (raw / resources[0][0]).write_bytes(b"damaged")
    for p in raw.glob("*-ubyte"):
        p.unlink()
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz is corrupt or incomplete"):
        load_dataset("fashion-mnist", tmp_path)


def test_cifar10_in_torchvisions_own_format(tmp_path, offline, monkeypatch):
    """torchvision's CIFAR files are pickles (its own format, for files a user downloaded): the
    test writes small ones and lifts the md5 check of the real ones."""
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    images = {}
    for name, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list:
        images[name] = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
        batch = {"data": images[name].reshape(3, -1), "labels": [1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES}))
    for attr in ("train_list", "test_list"):
        monkeypatch.setattr(tvd.CIFAR10, attr, [[n, None] for n, _ in getattr(tvd.CIFAR10, attr)])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": None})
    d = load_dataset("cifar10", tmp_path)
    assert d.train.images.shape == (15, 3, 32, 32) and d.classes == CLASSES
    assert torch.equal(d.test.images, torch.from_numpy(images["test_batch"]))
    assert d.train.labels.tolist() == [1, 2, 3] * 5


def _mnist_folder(folder, size=28, gz=True):
    """_mnist_files written to `folder`, gzipped as Debian installs them or not."""
    folder.mkdir(parents=True, exist_ok=True)
    files = _mnist_files(size=size)
    for name, data in files.items():
        (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
    return files


@pytest.mark.parametrize("layout", ["flat", "torchvision", "named-flat"])
def test_fashion_mnist_is_found_flat_or_in_torchvisions_layout(tmp_path, layout):
    folder = {
        "flat": tmp_path,
        "torchvision": tmp_path / "FashionMNIST" / "raw",
        "named-flat": tmp_path / "fashion-mnist",
    }[layout]
    files = _mnist_folder(folder)
    d = load_dataset("fashion-mnist", tmp_path, download=False)
    assert d.train.images.shape == (12, 1, 28, 28) and d.test.images.shape == (6, 1, 28, 28)
    assert d.train.images.flatten().tolist() == list(files["train-images-idx3-ubyte"][16:])
    assert d.test.labels.tolist() == [i % 10 for i in range(6)]
    assert d.classes[0] == "T-shirt/top"


def test_idx_reader_agrees_with_torchvisions(tmp_path):
    import torchvision

    _mnist_folder(tmp_path / "FashionMNIST" / "raw", gz=False)  # as torchvision keeps them
    from reslab.data.torchvision_sets import find_idx_files, load_idx

    train, test, classes, _ = load_idx("fashion-mnist", find_idx_files("fashion-mnist", tmp_path))
    theirs = torchvision.datasets.FashionMNIST(str(tmp_path), train=True, download=False)
    assert torch.equal(train.images[:, 0], theirs.data) and torch.equal(
        train.labels, theirs.targets
    )
    assert classes == theirs.classes


def test_truncated_idx_files_are_named(tmp_path):
    _mnist_folder(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="train-images-idx3-ubyte is truncated"):
        load_dataset("fashion-mnist", tmp_path, download=False)
