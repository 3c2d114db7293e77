"""Checkpoints: atomic writes, refusal of hostile files, clear errors for broken ones."""

import errno

import pytest
import torch

from reslab.errors import CheckpointError
from reslab.io import atomic_write
from reslab.run.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from tests.hostile import write_pickle_payload_checkpoint


def test_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "position": {"step": 3}, "config": {"lr": 0.1}}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0)) and loaded["position"]["step"] == 3


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"position": {"step": 1}})

    def disk_full(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device; the previous file"):
        save_checkpoint(path, {"position": {"step": 2}})
    monkeypatch.undo()
    assert load_checkpoint(path)["position"]["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left behind


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "PWNED"
    write_pickle_payload_checkpoint(path, marker)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)
    assert not marker.exists()
    # The payload is real: an unsafe load would have run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("cut", [10, 300, -50])
def test_truncated_checkpoint(tmp_path, cut):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.randn(1000)}})
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_not_a_reslab_checkpoint(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a reslab checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_weights_with_bad_header(tmp_path):
    good = tmp_path / "w.safetensors"
    save_weights(good, {"w": torch.ones(3)}, {"config": {}})
    tensors, meta = load_weights(good)
    assert torch.equal(tensors["w"], torch.ones(3)) and meta == {"config": {}}
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((10**12).to_bytes(8, "little") + b"{}")  # header length beyond the file
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_weights(bad)
    bad.write_bytes((8).to_bytes(8, "little") + b"not json")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_weights(bad)


def test_atomic_write_cleans_up_on_error(tmp_path):
    def boom(f):
        f.write(b"x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "f.bin", boom)
    assert list(tmp_path.iterdir()) == []
