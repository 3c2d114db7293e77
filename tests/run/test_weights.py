"""The one resolver of trained weights: every source becomes a `Trained`, and a new source is one
row of `SOURCES` that every way of loading weights then takes."""

from __future__ import annotations

import pytest
import torch

import reslab
from reslab.errors import CheckpointError, UserError
from reslab.run import weights
from reslab.run.weights import Source, Trained, resolve
from reslab.train.setup import build
from tests.conftest import CLASSES

DATA = {"classes": CLASSES, "mean": [0.5] * 3, "std": [0.25] * 3, "in_channels": 3,
        "image_size": [32, 32], "dataset": "cifar10-sample"}  # fmt: skip


@pytest.fixture
def seventh_source(monkeypatch):
    """A made-up source, `zoo:SEED`: a resnet20 with the seed's random weights."""

    def read(spec):
        torch.manual_seed(int(spec.text.removeprefix("zoo:")))
        state = reslab.create_model("resnet20").state_dict()
        config = reslab.build_config({"dataset": "cifar10-sample", "epochs": 1}).to_dict()
        return Trained(state, "resnet20", config, dict(DATA), spec.text)

    row = Source("a seeded zoo", lambda s: s.text.startswith("zoo:"), read)
    monkeypatch.setattr(weights, "SOURCES", [row, *weights.SOURCES])
    torch.manual_seed(7)
    return reslab.create_model("resnet20").eval()


def test_a_new_source_is_one_row_that_every_loader_takes(seventh_source, tiny_config):
    x = torch.randn(2, 3, 32, 32)
    expected = seventh_source(x)
    model = reslab.create_model("resnet20", weights="zoo:7")
    torch.testing.assert_close(model(x), expected)
    assert model.pretrained_cfg["source"] == "zoo:7" and model.pretrained_cfg["std"] == [0.25] * 3
    loaded = reslab.load("zoo:7")
    torch.testing.assert_close(loaded.model(x), expected)
    assert loaded.classes == CLASSES and loaded.config.dataset == "cifar10-sample"
    s = build(tiny_config(init="zoo:7", model="resnet20"))  # reslab train --init zoo:7
    torch.testing.assert_close(s.model.eval()(x), expected)


def test_each_kind_of_file_resolves_to_its_model_and_data(tmp_path):
    from reslab.run.checkpoint import save_checkpoint, save_weights

    torch.manual_seed(0)
    net = reslab.create_model("resnet20")
    config = reslab.build_config({"dataset": "cifar10-sample", "epochs": 1}).to_dict()
    save_weights(tmp_path / "w.safetensors", net.state_dict(), {"config": config, "data": DATA})
    save_checkpoint(tmp_path / "c.pt", {"config": config, "data": DATA,
                                        "model": net.state_dict(), "ema": None})  # fmt: skip
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    for name in ("w.safetensors", "c.pt"):
        t = resolve(tmp_path / name)
        assert (t.model, t.data["classes"], t.config["dataset"]) == ("resnet20", CLASSES,
                                                                     "cifar10-sample")  # fmt: skip
    bare = resolve(tmp_path / "bare.pt", "resnet20")
    assert bare.config is None and bare.model == "resnet20" and bare.data == {}
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(bare.build()(x), net.eval()(x))
    with pytest.raises(CheckpointError, match="does not say which model"):
        resolve(tmp_path / "bare.pt").build()
    with pytest.raises(UserError, match="no such run directory or checkpoint"):
        resolve(tmp_path / "missing.pt")


def test_saved_configs_from_before_shortcut_pad_keep_their_padding(tmp_path):
    from reslab.run.checkpoint import save_weights

    config = reslab.build_config({"dataset": "cifar10-sample", "epochs": 1}).to_dict()
    del config["shortcut_pad"]  # as written before the key existed: padding all after
    save_weights(tmp_path / "old.safetensors", reslab.create_model("resnet20").state_dict(),
                 {"config": config, "data": DATA})  # fmt: skip
    assert resolve(tmp_path / "old.safetensors").config["shortcut_pad"] == "after"
