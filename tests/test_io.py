"""Files on disk: written atomically with the permissions the umask gives; torch files read
safely, wrong files named in one whole sentence."""

import os

import pytest
import torch

from reslab.errors import CheckpointError
from reslab.io import atomic_write_text, clip, read_torch_file
from reslab.run.checkpoint import save_checkpoint


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "metrics.txt", "x")
        save_checkpoint(tmp_path / "last.pt", {"position": {"step": 1}})
    finally:
        os.umask(old)
    for name in ("metrics.txt", "last.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_a_text_file_is_not_a_checkpoint_and_says_so(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('model = "resnet20"\n')
    with pytest.raises(CheckpointError) as e:
        read_torch_file(path)
    assert str(e.value).endswith("expected a run directory, a .pt checkpoint or a .safetensors "
                                 "weights file")  # fmt: skip
    assert "objects other than tensors" not in str(e.value)


def test_plain_torch_files_are_read(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pt")
    assert torch.equal(read_torch_file(tmp_path / "w.pt")["w"], torch.ones(2))


def test_clip_cuts_at_a_word_and_says_so():
    assert clip("short", 10) == "short"
    cut = clip("the quick brown fox jumps over the lazy dog", 17)
    assert cut == "the quick brown ..." and len(cut) <= 17 + 4
