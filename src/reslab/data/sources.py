"""Where data sets come from: torchvision's classes, the shipped sample, image folders.

Each source is a table row; `load_dataset` decodes once and then serves from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from reslab.data import folder
from reslab.data.cache import cache_path, read_cache, write_cache
from reslab.data.sets import DataSplits, ImageSet, channel_stats
from reslab.errors import DataError

SAMPLE_FILE = Path(__file__).parent / "sample" / "cifar10-sample.safetensors"


@dataclass(frozen=True)
class TorchvisionSet:
    cls_name: str  # class in torchvision.datasets
    archive: str  # the file a user must obtain without network
    url: str
    split_arg: Callable[[bool], dict]  # train? -> keyword arguments selecting the split
    val_split: int


TORCHVISION_SETS = {
    "cifar10": TorchvisionSet(
        "CIFAR10",
        "cifar-10-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        lambda t: {"train": t},
        5000,
    ),
    "cifar100": TorchvisionSet(
        "CIFAR100",
        "cifar-100-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        lambda t: {"train": t},
        5000,
    ),
    "mnist": TorchvisionSet(
        "MNIST",
        "MNIST/raw/train-images-idx3-ubyte.gz (and 3 more)",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        lambda t: {"train": t},
        5000,
    ),
    "fashion-mnist": TorchvisionSet(
        "FashionMNIST",
        "FashionMNIST/raw/train-images-idx3-ubyte.gz (and 3 more)",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        lambda t: {"train": t},
        5000,
    ),
    "svhn": TorchvisionSet(
        "SVHN",
        "train_32x32.mat and test_32x32.mat",
        "http://ufldl.stanford.edu/housenumbers/",
        lambda t: {"split": "train" if t else "test"},
        5000,
    ),
}
SAMPLE_VAL_SPLIT = 500


def list_datasets() -> list[str]:
    return [*TORCHVISION_SETS, "cifar10-sample"]


def default_data_dir() -> Path:
    return Path(os.environ.get("RESLAB_DATA") or Path.home() / ".cache" / "reslab")


def default_val_split(name: str, n_train: int | None = None) -> int:
    """Images held out for validation when the config says -1."""
    if name in TORCHVISION_SETS:
        return TORCHVISION_SETS[name].val_split
    if name == "cifar10-sample":
        return SAMPLE_VAL_SPLIT
    return (n_train or 0) // 10  # folder: sources hold out 10%


def _reachable(url: str, timeout: float = 3.0) -> bool:
    host = urllib.parse.urlparse(url).hostname
    try:
        socket.create_connection((host, 443 if url.startswith("https") else 80), timeout).close()
        return True
    except OSError:
        return False


def _torchvision_split(spec: TorchvisionSet, root: Path, train: bool, download: bool):
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.cls_name)
    try:
        return cls(str(root), download=False, **spec.split_arg(train))
    except RuntimeError:
        pass  # not there yet
    if not download or not _reachable(spec.url):
        raise DataError(
            f"{spec.cls_name} is not in {root} and cannot be downloaded (no network?); "
            f"get {spec.archive} from {spec.url} and put it in {root}"
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)  # a stalled download fails instead of hanging
    try:
        return cls(str(root), download=True, **spec.split_arg(train))
    except (OSError, RuntimeError) as e:
        raise DataError(
            f"downloading {spec.cls_name} failed ({str(e)[:80]}); get {spec.archive} "
            f"from {spec.url} and put it in {root}"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _as_imageset(ds) -> ImageSet:
    images = torch.as_tensor(ds.data)
    if images.dim() == 3:  # MNIST-like: (N, H, W)
        images = images[:, None]
    elif images.shape[-1] == 3:  # CIFAR: (N, H, W, C)
        images = images.permute(0, 3, 1, 2)
    labels = getattr(ds, "targets", None)
    labels = ds.labels if labels is None else labels
    return ImageSet(images.contiguous(), torch.as_tensor(labels, dtype=torch.int64))


def _fingerprint(paths) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        digest.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()


def _tree_fingerprint(root: Path) -> str:
    return _fingerprint([p for p in root.rglob("*") if p.is_file()]) if root.is_dir() else "absent"


def _build_torchvision(name: str, data_dir: Path, download: bool):
    spec, root = TORCHVISION_SETS[name], data_dir / name
    train = _as_imageset(_torchvision_split(spec, root, True, download))
    test_ds = _torchvision_split(spec, root, False, download)
    classes = list(getattr(test_ds, "classes", None) or [str(i) for i in range(10)])
    return train, _as_imageset(test_ds), classes, 0


def _unpack_jpegs(blob: torch.Tensor, offsets: torch.Tensor) -> list[bytes]:
    raw = blob.numpy().tobytes()
    bounds = offsets.tolist()
    return [raw[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _build_sample(skip_corrupt: bool):
    """The shipped sample: real CIFAR-10 JPEG bytes (see scripts/make_cifar10_sample.py)."""
    from safetensors import safe_open

    from reslab.data.decode import decode_many

    t = load_file(str(SAMPLE_FILE))
    with safe_open(str(SAMPLE_FILE), framework="pt") as f:
        classes = json.loads(f.metadata()["classes"])
    splits = []
    for split in ("train", "test"):
        blobs = _unpack_jpegs(t[f"{split}_jpeg"], t[f"{split}_offsets"])
        names = [Path(f"{SAMPLE_FILE.name}:{split}[{i}]") for i in range(len(blobs))]
        images, kept = decode_many(names, blobs, 3, skip_corrupt)
        splits.append(ImageSet(torch.stack(images), t[f"{split}_labels"][kept].contiguous()))
    return splits[0], splits[1], classes, 0


def _source(name: str, data_dir: Path, download: bool, skip_corrupt: bool):
    """(canonical name, cache key, builder) for a data set name."""
    if name.startswith("folder:"):
        root = folder.find_root(name.removeprefix("folder:"))
        scanned = folder.scan(root)
        return (
            f"folder:{root}",
            f"folder|{root}|{scanned[2]}",
            lambda: folder.load_folder(root, skip_corrupt, scanned),
        )
    if name == "cifar10-sample":
        if not SAMPLE_FILE.is_file():
            raise DataError(f"the shipped sample {SAMPLE_FILE} is missing; reinstall reslab")
        return name, f"sample|{_fingerprint([SAMPLE_FILE])}", lambda: _build_sample(skip_corrupt)
    if name in TORCHVISION_SETS:
        return (
            name,
            f"{name}|{_tree_fingerprint(data_dir / name)}",
            lambda: _build_torchvision(name, data_dir, download),
        )
    raise DataError(
        f"unknown data set {name!r}; known: {', '.join(list_datasets())}, or "
        "folder:PATH for an image-folder tree"
    )


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    skip_corrupt: bool = False,
    progress: bool = False,
) -> DataSplits:
    """Decoded uint8 splits with classes and train-split statistics, cached on disk."""
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    canonical, key, build = _source(name, data_dir, download, skip_corrupt)
    key = hashlib.sha256(key.encode()).hexdigest()
    cached = read_cache(cache_path(data_dir, canonical, key), key)
    if cached is not None:
        return cached
    if progress:
        print(f"decoding {canonical} (once; later loads come from the cache)", flush=True)
    train, test, classes, skipped = build()
    mean, std = channel_stats(train.images)
    splits = DataSplits(canonical, train, test, classes, mean, std, skipped)
    if name in TORCHVISION_SETS:  # a download added files: key the cache by what is there now
        key = hashlib.sha256(_source(name, data_dir, False, skip_corrupt)[1].encode()).hexdigest()
    write_cache(cache_path(data_dir, canonical, key), splits, key)
    return splits
