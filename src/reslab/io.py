"""Files on disk: crash-safe writes, and the one safe reader of torch files.

Writes go to a temporary name in the same folder, then flush, fsync, rename: a reader sees either
the old file or the new one, never half of one (POSIX rename is atomic within a file system).
Torch files are read with `weights_only=True`, which unpickles only tensors and plain containers:
a file carrying code is refused, never run.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


def current_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to; on success it is fsync'd and renamed to
    `path`, on any error removed. For writers that want a file name rather than a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600), and a writer may have replaced it with a file
        # of its own (safetensors does): the finished file gets what open() would give it, so
        # that teammates and a shared TensorBoard can read it where the umask allows.
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO], None], mode: str = "wb") -> Path:
    with atomic_open(path, mode) as f:
        write(f)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def atomic_write_json(path: str | Path, obj: object) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_torch_file(path: str | Path) -> object:
    """The content of a `torch.save` file, or one CheckpointError line saying what it is not."""
    import pickle
    import zipfile

    import torch

    from reslab.errors import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    with path.open("rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive (PK..) or, in the legacy format, a pickle (0x80 first).
    if head[:2] != b"PK" and head[:1] != b"\x80":
        raise CheckpointError(
            f"{path} is not a checkpoint: it was not written by torch.save; expected a run "
            "directory, a .pt checkpoint or a .safetensors weights file"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"refused to load {path}: it holds Python objects other than tensors and plain "
            "data, which could run code; reslab never runs code from a file it reads"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt or truncated: {clip(first, 120)})"
        ) from None


def clip(text: str, limit: int) -> str:
    """`text` cut at a word boundary near `limit`, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " ..."


def plural(n: int, noun: str) -> str:
    """ "1 epoch", "12 epochs", "1,000 steps": a count and its noun, in agreement."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
