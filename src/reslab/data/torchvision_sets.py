"""The standard data sets, through torchvision's dataset classes: their downloads, checksums and
file formats. Without network and without a local copy they fail within seconds, naming the
files to get and the folder to put them in."""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from reslab.data.sets import ImageSet
from reslab.errors import DataError
from reslab.io import clip

REACH_TIMEOUT_S = 3.0  # the no-network verdict comes within this
STALL_TIMEOUT_S = 60.0  # a download that stops sending for this long fails instead of hanging


@dataclass(frozen=True)
class TorchvisionSet:
    cls_name: str  # the class in torchvision.datasets
    base_url: str  # where `files` can be fetched by hand (base_url + file name)
    files: tuple[str, ...]  # what torchvision downloads, as named on its server
    md5s: Callable[[type], dict[str, str]]  # the torchvision class -> its md5 for each file
    subdir: str  # where, under the set's folder, torchvision expects `files`
    layout: str  # of the class's .data array: "NHWC", "NCHW" or "NHW"
    split_kwargs: tuple[dict, dict]  # constructor arguments for (train, test)
    labels_attr: str = "targets"
    classes: tuple[str, ...] = ()  # when the class has no .classes
    needs: str = ""  # an extra module torchvision's class imports
    val_split: int = 5000  # default validation hold-out (see sources.default_val_split)


_TRAIN_FLAG = ({"train": True}, {"train": False})
_MNIST_FILES = tuple(
    f"{s}-{k}-idx{d}-ubyte.gz" for s in ("train", "t10k") for k, d in (("images", 3), ("labels", 1))
)

# Each row: one data set. md5 sums are read from torchvision's own class attributes.
TORCHVISION_SETS: dict[str, TorchvisionSet] = {
    "cifar10": TorchvisionSet(
        "CIFAR10", "https://www.cs.toronto.edu/~kriz/", ("cifar-10-python.tar.gz",),
        lambda c: {c.filename: c.tgz_md5}, "", "NHWC", _TRAIN_FLAG,
    ),
    "cifar100": TorchvisionSet(
        "CIFAR100", "https://www.cs.toronto.edu/~kriz/", ("cifar-100-python.tar.gz",),
        lambda c: {c.filename: c.tgz_md5}, "", "NHWC", _TRAIN_FLAG,
    ),
    "mnist": TorchvisionSet(
        "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/", _MNIST_FILES,
        lambda c: dict(c.resources), "MNIST/raw", "NHW", _TRAIN_FLAG,
    ),
    "fashion-mnist": TorchvisionSet(
        "FashionMNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        _MNIST_FILES, lambda c: dict(c.resources), "FashionMNIST/raw", "NHW", _TRAIN_FLAG,
    ),
    "svhn": TorchvisionSet(
        "SVHN", "http://ufldl.stanford.edu/housenumbers/", ("train_32x32.mat", "test_32x32.mat"),
        lambda c: {f: m for _, f, m in c.split_list.values()}, "", "NCHW",
        ({"split": "train"}, {"split": "test"}), labels_attr="labels",
        classes=tuple(str(d) for d in range(10)), needs="scipy",
    ),
}  # fmt: skip


def _reachable(url: str, timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout` s. Runs in a thread:
    name resolution has no timeout of its own and can stall for tens of seconds offline."""
    parts = urllib.parse.urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    verdict: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((parts.hostname, port), timeout).close()
            verdict.append(True)
        except OSError:
            verdict.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # abandoned, not joined, if it stalls
    thread.start()
    thread.join(timeout)
    return bool(verdict and verdict[0])


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torchvision's urlopen calls take no timeout; the process-wide default is the only handle.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _where(spec: TorchvisionSet, root: Path) -> str:
    files = ", ".join(spec.files)
    them = "it" if len(spec.files) == 1 else "them"
    return f"get {files} from {spec.base_url} and put {them} in {root / spec.subdir}"


def _local_archives(spec: TorchvisionSet, cls: type, root: Path) -> bool:
    """True if every file is there and intact; DataError for one that is there but corrupt."""
    from torchvision.datasets.utils import check_integrity

    paths = [root / spec.subdir / f for f in spec.files]
    if not all(p.is_file() for p in paths):
        return False
    md5s = spec.md5s(cls)
    for p in paths:
        if not check_integrity(str(p), md5s[p.name]):
            raise DataError(
                f"{p} is corrupt or incomplete (its md5 differs from torchvision's); "
                f"delete it and get it again from {spec.base_url}{p.name}"
            )
    return True


def _fetch(spec: TorchvisionSet, name: str, root: Path, download: bool) -> None:
    """Make the files torchvision needs appear under root: extract local archives, or download."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.cls_name)
    local = _local_archives(spec, cls, root)
    if not local and not download:
        raise DataError(f"{name} is not in {root} and downloading is off; {_where(spec, root)}")
    if not local and not _reachable(spec.base_url):
        host = urllib.parse.urlparse(spec.base_url).hostname
        raise DataError(
            f"{name} is not in {root} and {host} cannot be reached (no network?); "
            f"{_where(spec, root)}"
        )
    try:
        with _socket_timeout(STALL_TIMEOUT_S):  # download=True: torchvision verifies, extracts
            for kwargs in spec.split_kwargs:
                cls(str(root), download=True, **kwargs)
    except (OSError, RuntimeError) as e:  # urllib's URLError is an OSError
        reason = clip(str(e).strip().splitlines()[0], 100) if str(e).strip() else type(e).__name__
        raise DataError(f"getting {name} failed ({reason}); {_where(spec, root)}") from None


_TO_NCHW = {
    "NHWC": lambda x: x.permute(0, 3, 1, 2),
    "NCHW": lambda x: x,
    "NHW": lambda x: x[:, None],
}


def _as_imageset(ds, spec: TorchvisionSet) -> ImageSet:
    images = _TO_NCHW[spec.layout](torch.as_tensor(ds.data)).contiguous()
    return ImageSet(images, torch.as_tensor(getattr(ds, spec.labels_attr), dtype=torch.int64))


def _open(spec: TorchvisionSet, root: Path) -> tuple:
    """torchvision's (train, test) datasets, read from root without any download."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.cls_name)
    return tuple(cls(str(root), download=False, **kwargs) for kwargs in spec.split_kwargs)


def torchvision_classes(name: str) -> list[str] | None:
    """The class names of a torchvision set where its class (or our table) states them without
    a file read; None where only its files say (CIFAR's batches.meta)."""
    import torchvision.datasets as tvd

    spec = TORCHVISION_SETS[name]
    classes = getattr(getattr(tvd, spec.cls_name), "classes", None) or spec.classes
    return list(classes) if classes else None


def load_torchvision(name: str, root: Path, download: bool):
    """(train, test, classes, 0) of a torchvision data set kept in `root`."""
    spec = TORCHVISION_SETS[name]
    if spec.needs and importlib.util.find_spec(spec.needs) is None:
        raise DataError(
            f"{name} needs the {spec.needs} package; install it (pip install "
            f"{spec.needs}) or pick another data set"
        )
    try:
        train, test = _open(spec, root)
    except RuntimeError:  # torchvision's "Dataset not found or corrupted"
        _fetch(spec, name, root, download)
        try:
            train, test = _open(spec, root)
        except RuntimeError as e:
            raise DataError(
                f"{name} in {root} is unreadable ({clip(str(e), 80)}); delete the folder "
                f"and {_where(spec, root)}"
            ) from None
    classes = list(getattr(test, "classes", None) or spec.classes)
    return _as_imageset(train, spec), _as_imageset(test, spec), classes, 0


# -- IDX files (MNIST, Fashion-MNIST) found where the user keeps them ---------------------------

IDX_SETS = ("mnist", "fashion-mnist")
_IDX_DTYPES = {0x08: torch.uint8}  # the only type these data sets use


def idx_folders(name: str, data_dir: Path) -> list[Path]:
    """Where the IDX files of `name` may lie under --data-dir: flat in it (as Debian installs
    them), in torchvision's SET/raw layout, or either of those under a folder named as the set."""
    spec = TORCHVISION_SETS[name]
    return [data_dir, data_dir / spec.subdir, data_dir / name, data_dir / name / spec.subdir]


def find_idx_files(name: str, data_dir: Path) -> list[Path] | None:
    """The four IDX files (gzipped or not), all from one folder, or None."""
    for folder in idx_folders(name, data_dir):
        found = []
        for file in TORCHVISION_SETS[name].files:
            candidates = [folder / file, folder / file.removesuffix(".gz")]
            found += [c for c in candidates if c.is_file()][:1]
        if len(found) == len(TORCHVISION_SETS[name].files):
            return found
    return None


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (LeCun's format: two zero bytes, a type code, the number of dimensions, each
    dimension as a big-endian int32, then the data) as a tensor."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"{path} is corrupt or incomplete ({e}); get it again") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = data[4 + 4 * ndim :]
    if len(body) != torch.Size(dims).numel():
        raise DataError(f"{path} is truncated: {len(body)} bytes for shape {dims}")
    return torch.frombuffer(bytearray(body), dtype=_IDX_DTYPES[data[2]]).view(*dims)


def load_idx(name: str, files: list[Path]):
    """(train, test, classes, 0) from the four IDX files, in TorchvisionSet.files order."""
    import torchvision.datasets as tvd

    train_x, train_y, test_x, test_y = (read_idx(f) for f in files)
    classes = list(getattr(tvd, TORCHVISION_SETS[name].cls_name).classes)
    return (
        ImageSet(train_x[:, None].contiguous(), train_y.long()),
        ImageSet(test_x[:, None].contiguous(), test_y.long()),
        classes,
        0,
    )
