"""The decoded-data cache: hits skip decoding, changes invalidate, damage is rebuilt."""

import os
import time
import warnings

import pytest
import torch
from safetensors import safe_open

import reslab.data.decode as decode
from reslab.data import load_dataset
from reslab.data.cache import FORMAT, cache_path

from .conftest import write_tree


@pytest.fixture
def no_decoding(monkeypatch):
    """Make any decoding fail loudly: what follows must come from the cache."""

    def refuse(*args, **kwargs):
        raise AssertionError("decoded again")

    def arm():
        monkeypatch.setattr(decode, "_decode_chunk", refuse)

    return arm


def only_cache_file(data_dir):
    (path,) = (data_dir / "cache").iterdir()
    return path


def _format(path) -> str:
    """The format a cache file says it was written in (its safetensors header)."""
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()["format"]


def test_a_second_load_reads_the_cache_without_decoding(tree, tmp_path, no_decoding):
    first = load_dataset(f"folder:{tree}", tmp_path / "dd")
    no_decoding()
    again = load_dataset(f"folder:{tree}", tmp_path / "dd")
    assert torch.equal(first.train.images, again.train.images)
    assert torch.equal(first.test.labels, again.test.labels)
    assert (first.name, first.classes, first.mean, first.std, first.skipped) == (
        again.name, again.classes, again.mean, again.std, again.skipped,
    )  # fmt: skip
    path = only_cache_file(tmp_path / "dd")
    assert path == cache_path(tmp_path / "dd", first.name) and path.suffix == ".safetensors"


@pytest.mark.parametrize(
    "change",
    [
        lambda t: (t / "train/cat/extra.jpg").write_bytes((t / "train/cat/0000.jpg").read_bytes()),
        lambda t: (t / "test/dog/0000.jpg").unlink(),
        lambda t: os.utime(t / "train/ship/0002.jpg", ns=(0, time.time_ns() + 10**9)),
    ],
    ids=["add", "remove", "touch"],
)
def test_changing_the_tree_invalidates_and_replaces_the_cache(tree, tmp_path, no_decoding, change):
    load_dataset(f"folder:{tree}", tmp_path / "dd")
    change(tree)
    no_decoding()
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(f"folder:{tree}", tmp_path / "dd")


def test_a_rebuilt_cache_replaces_the_stale_file(tree, tmp_path):
    first = load_dataset(f"folder:{tree}", tmp_path / "dd")
    (tree / "train/cat/0000.jpg").unlink()
    second = load_dataset(f"folder:{tree}", tmp_path / "dd")
    assert len(second.train) == len(first.train) - 1
    assert len(list((tmp_path / "dd" / "cache").iterdir())) == 1  # no pile of stale copies


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-100] + bytes(b[-100] ^ 0xFF for _ in [0]) + b[-99:],  # one flipped byte
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b"\0" * len(b),  # zeroed
        lambda b: b"",  # empty
    ],
    ids=["flipped", "truncated", "zeroed", "empty"],
)
def test_a_damaged_cache_is_rebuilt_with_a_warning(tree, tmp_path, no_decoding, damage):
    first = load_dataset(f"folder:{tree}", tmp_path / "dd")
    path = only_cache_file(tmp_path / "dd")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.warns(UserWarning, match="unreadable.*rebuilding it"):
        again = load_dataset(f"folder:{tree}", tmp_path / "dd")
    assert torch.equal(first.train.images, again.train.images)
    assert only_cache_file(tmp_path / "dd") == path and _format(path) == FORMAT
    no_decoding()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ... and the rebuilt file serves the next load, silently
        third = load_dataset(f"folder:{tree}", tmp_path / "dd")
    assert torch.equal(third.train.images, first.train.images)


def test_a_cache_of_another_format_is_silently_rebuilt(tree, tmp_path, monkeypatch, no_decoding):
    import reslab.data.cache as cache

    monkeypatch.setattr(cache, "FORMAT", FORMAT + "-old")
    old = load_dataset(f"folder:{tree}", tmp_path / "dd")
    path = only_cache_file(tmp_path / "dd")
    assert _format(path) == FORMAT + "-old"
    monkeypatch.setattr(cache, "FORMAT", FORMAT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # silently: no warning
        new = load_dataset(f"folder:{tree}", tmp_path / "dd")
    # Rebuilt: the one cache file, overwritten in place, now in the current format ...
    assert only_cache_file(tmp_path / "dd") == path and _format(path) == FORMAT
    assert torch.equal(new.train.images, old.train.images)
    assert torch.equal(new.test.labels, old.test.labels)
    no_decoding()  # ... and the next load is served from it
    assert torch.equal(
        load_dataset(f"folder:{tree}", tmp_path / "dd").train.images, old.train.images
    )


def test_an_unwritable_data_dir_still_loads(tree, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "cache").write_text("a file where the cache folder should be")  # fails even as root
    with pytest.warns(UserWarning, match="could not write the data cache"):
        d = load_dataset(f"folder:{tree}", ro)
    assert len(d.train) == 18


def test_skipped_files_are_not_served_from_cache_without_skip_corrupt(tree, tmp_path):
    (tree / "train/cat/0001.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.warns(UserWarning, match="skipped 1"):
        load_dataset(f"folder:{tree}", tmp_path / "dd", skip_corrupt=True)
    with pytest.warns(UserWarning, match="skipped 1 unreadable image.*cached"):
        assert load_dataset(f"folder:{tree}", tmp_path / "dd", skip_corrupt=True).skipped == 1
    from reslab.errors import DataError

    with pytest.raises(DataError, match="0001.jpg is corrupt"):
        load_dataset(f"folder:{tree}", tmp_path / "dd")


def test_the_cache_file_is_readable_by_others_sharing_the_data_dir(tree, tmp_path):
    load_dataset(f"folder:{tree}", tmp_path / "dd")
    mode = only_cache_file(tmp_path / "dd").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_two_trees_get_two_cache_files(tmp_path):
    a, b = write_tree(tmp_path / "a"), write_tree(tmp_path / "b", classes=("cat", "frog"))
    assert load_dataset(f"folder:{a}", tmp_path / "dd").num_classes == 3
    assert load_dataset(f"folder:{b}", tmp_path / "dd").num_classes == 2
    assert load_dataset(f"folder:{a}", tmp_path / "dd").num_classes == 3
    assert len(list((tmp_path / "dd" / "cache").iterdir())) == 2
