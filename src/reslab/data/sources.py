"""Which data sets exist and how each is loaded: a registry table from names (and the folder:
prefix) to sources; `load_dataset` decodes a source once and then serves it from the cache."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reslab.data import folder, shipped
from reslab.data.cache import cache_path, read_cache, write_cache
from reslab.data.sets import DataSplits, ImageSet, channel_stats, split_validation
from reslab.data.torchvision_sets import (
    IDX_SETS,
    TORCHVISION_SETS,
    find_idx_files,
    load_idx,
    load_torchvision,
    torchvision_classes,
)
from reslab.errors import DataError

log = logging.getLogger("reslab.data")

SAMPLE_FILE = shipped.SAMPLE_FILE  # kept importable from here
FOLDER_PREFIX = "folder:"
SAMPLE_VAL_SPLIT = 500  # of the sample's 4,000 training images: 50 per class
FOLDER_VAL_FRACTION = 0.1

Built = tuple[ImageSet, ImageSet, list[str], int]  # train, test, classes, images skipped


@dataclass(frozen=True)
class Source:
    name: str  # canonical: "cifar10", "folder:/abs/root"
    key: Callable[[], str]  # fingerprint of what the data is built from, asked before and after
    build: Callable[[], Built]
    classes: Callable[[], list[str] | None]  # the class names, where known without decoding


def _file_fingerprint(root: Path) -> str:
    """Names, sizes and mtimes of every file under root (a handful for torchvision's sets)."""
    if not root.is_dir():
        return "absent"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    lines = [f"{p.relative_to(root)}\0{p.stat().st_size}\0{p.stat().st_mtime_ns}" for p in files]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _files_fingerprint(files: list[Path]) -> str:
    lines = [f"{p.resolve()}\0{p.stat().st_size}\0{p.stat().st_mtime_ns}" for p in files]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _torchvision_source(name: str, data_dir: Path, download: bool, skip_corrupt: bool) -> Source:
    files = find_idx_files(name, data_dir) if name in IDX_SETS else None
    classes = functools.partial(torchvision_classes, name)
    if files is not None:  # MNIST-style files already here: read them where they lie
        key = functools.partial(_files_fingerprint, files)
        return Source(name, key, functools.partial(load_idx, name, files), classes)
    root = data_dir / name
    key = functools.partial(_file_fingerprint, root)
    return Source(name, key, functools.partial(load_torchvision, name, root, download), classes)


def _sample_source(data_dir: Path, download: bool, skip_corrupt: bool) -> Source:
    key = shipped.sample_fingerprint()
    build = functools.partial(shipped.load_sample, skip_corrupt)
    return Source("cifar10-sample", lambda: key, build, shipped.sample_classes)


def _folder_source(
    path: str, data_dir: Path, download: bool, skip_corrupt: bool, need_train: bool = True
) -> Source:
    if not path:
        raise DataError("folder: needs a path, as in folder:/data/cifar10")
    tree = folder.scan(path, need_train)
    return Source(
        f"{FOLDER_PREFIX}{tree.root}",
        lambda: tree.fingerprint,
        functools.partial(folder.load_tree, tree, skip_corrupt),
        lambda: tree.classes,
    )


# The registry: name -> source factory. Adding a data set is adding a row.
NAMED_SOURCES: dict[str, Callable[..., Source]] = {
    **{name: functools.partial(_torchvision_source, name) for name in TORCHVISION_SETS},
    "cifar10-sample": _sample_source,
}
PREFIXED_SOURCES: dict[str, Callable[..., Source]] = {FOLDER_PREFIX: _folder_source}
VAL_SPLITS: dict[str, int] = {
    **{name: spec.val_split for name, spec in TORCHVISION_SETS.items()},
    "cifar10-sample": SAMPLE_VAL_SPLIT,
}


def list_datasets() -> list[str]:
    """Registered names; folder:PATH is accepted too."""
    return list(NAMED_SOURCES)


def default_data_dir() -> Path:
    """$RESLAB_DATA if set, else ~/.cache/reslab."""
    return Path(os.environ.get("RESLAB_DATA") or Path.home() / ".cache" / "reslab").expanduser()


def _unknown(name: str) -> DataError:
    hint = f"; did you mean folder:{name}?" if name and Path(name).expanduser().is_dir() else ""
    return DataError(
        f"unknown data set {name!r}; known: {', '.join(list_datasets())}, or "
        f"folder:PATH for an image-folder tree{hint}"
    )


def _source(
    name: str, data_dir: Path, download: bool, skip_corrupt: bool, need_train: bool
) -> Source:
    for prefix, factory in PREFIXED_SOURCES.items():
        if name.startswith(prefix):
            path = name.removeprefix(prefix)
            return factory(path, data_dir, download, skip_corrupt, need_train)
    if name not in NAMED_SOURCES:
        raise _unknown(name)
    return NAMED_SOURCES[name](data_dir, download, skip_corrupt)


def default_val_split(name: str, n_train: int | None = None) -> int:
    """Images to hold out for validation when the config does not say: 5,000 for the
    torchvision sets, 500 for cifar10-sample, 10% of the training images for folder: sets
    (`n_train` if given, else counted in the folder itself)."""
    if name in VAL_SPLITS:
        return VAL_SPLITS[name]
    if not name.startswith(FOLDER_PREFIX):
        raise _unknown(name)
    if n_train is None:
        root = folder.find_root(name.removeprefix(FOLDER_PREFIX))
        n_train = sum(len(files) for files in folder.scan(root).train.values())
    return int(n_train * FOLDER_VAL_FRACTION)


def holdout(data: DataSplits, val_split: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """The one rule for a run's validation split: (training images, held-out images), with
    `val_split` images held out, or the data set's default number when it is -1. Training,
    `reslab eval --split val` and the experiments all ask this function."""
    n = default_val_split(data.name, len(data.train)) if val_split < 0 else val_split
    return split_validation(data.train, n, seed=seed)


def _from_cache(path: Path, key: str, skip_corrupt: bool) -> DataSplits | None:
    cached = read_cache(path, key)
    if cached is not None and cached.skipped:
        if not skip_corrupt:  # rebuild, so that the unreadable files are named in an error
            return None
        warnings.warn(
            f"skipped {cached.skipped} unreadable image(s) in {cached.name} (cached; "
            "fix or delete them and reload to see which)",
            stacklevel=3,
        )
    return cached


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    skip_corrupt: bool = False,
    classes: Sequence[str] | None = None,
    need_train: bool = True,
) -> DataSplits:
    """Decoded uint8 splits with classes and train-split mean/std, cached under DATA_DIR/cache/.

    What needs no pixels is checked before any decoding: the data directory, the tree, and
    `classes` (the caller's, e.g. a model's: a data set of other classes is refused). Without
    `need_train`, an image folder may hold only its test split (as for evaluation)."""
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} is a file; give a folder (--data-dir)")
    source = _source(name, data_dir, download, skip_corrupt, need_train)
    known = source.classes() if classes is not None else None
    if known is not None and list(known) != list(classes):
        raise DataError(
            f"data set {source.name} has classes {_few(known)}, but the model was trained on "
            f"{_few(classes)}; evaluate on a data set with the same classes"
        )
    path = cache_path(data_dir, source.name)
    splits = _from_cache(path, source.key(), skip_corrupt)
    if splits is not None:
        log.debug(f"{source.name}: read from the cache {path}")
        return splits
    started = time.perf_counter()
    train, test, names, skipped = source.build()
    mean, std = channel_stats(train.images if len(train) else test.images)
    splits = DataSplits(source.name, train, test, names, mean, std, skipped)
    write_cache(path, splits, source.key())  # asked again: a download adds files
    # Said once there is something decoded: a missing download or a bad tree says nothing of it.
    log.info(
        f"decoded {source.name} in {time.perf_counter() - started:.1f} s "
        f"({len(train) + len(test):,} images); later loads read {path}"
    )
    return splits


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(names[:4])
    return f"[{shown}, ...]" if len(names) > 4 else f"[{shown}]"
