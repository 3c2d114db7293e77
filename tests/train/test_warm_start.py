"""`--init`: runs that start from trained weights (a run, a file, shipped weights)."""

import re
import shutil

import pytest
import torch

from reslab.errors import CheckpointError, ConfigError
from reslab.infer import load
from reslab.models import create_model
from reslab.run.weights import Trained
from reslab.train import fit, resume
from reslab.train.setup import build
from reslab.train.warm_start import apply
from tests.conftest import CLASSES, tiny_flags


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_config):
    """A finished tiny run to start from (EMA on, so its saved weights are the average's)."""
    out = tmp_path_factory.mktemp("source") / "run"
    fit(tiny_config(max_steps=4, ema=0.5), out, quiet=True)
    return out


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_starts_from_the_weights_of_another(finished, tiny_config):
    s = build(tiny_config(init=str(finished), ema=0.9))
    want = load(finished).model.state_dict()
    assert _same(s.model.state_dict(), want)
    # The weight average starts from them too, not from the random weights they replaced.
    assert _same(s.ema.module.state_dict(), want)


def test_a_resumed_run_does_not_read_its_init_again(finished, tiny_config, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(finished, source)
    fit(tiny_config(init=str(source), max_steps=2), tmp_path / "run", quiet=True)
    shutil.rmtree(source)  # the checkpoint holds the weights now
    result = resume(tmp_path / "run", {"max_steps": 4})
    assert result.summary["steps"] == 4


def test_shipped_weights_start_a_run_at_their_accuracy(tiny_config, tmp_path):
    # One step at a negligible lr: the run's test accuracy is the shipped weights' (88.0% on
    # the sample's 1,000 test images; one batch of training-mode BN statistics moves it little).
    config = tiny_config(model="resnet20", init="pretrained", max_steps=1, lr=1e-6, val_split=100)
    result = fit(config, tmp_path / "run", quiet=True)
    assert result.summary["test_acc"] >= 0.85  # a random resnet20 scores about 10%


def test_other_classes_keep_the_body_and_start_the_classifier_afresh(tiny_config):
    source = create_model("resnet20", num_classes=4)
    model = create_model("resnet20", num_classes=10)
    fresh_fc = {k: v.clone() for k, v in model.fc.state_dict().items()}
    initial = Trained(source.state_dict(), "resnet20", None, {"classes": list("abcd")}, "four.pt")
    line = apply(model, initial, tiny_config(), CLASSES)
    assert "fc starts afresh" in line
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert torch.equal(model.layer3[2].bn2.running_var, source.layer3[2].bn2.running_var)
    assert _same(model.fc.state_dict(), fresh_fc)


@pytest.mark.parametrize(
    ("overrides", "error", "words"),
    [
        (dict(model="resnet32"), ConfigError, "holds a small_cnn, this run trains a resnet32"),
        (dict(shortcut_pad="after"), ConfigError, "add --shortcut-pad both"),
        (dict(norm="none"), ConfigError, "add --norm batchnorm"),
    ],
)
def test_a_source_of_another_architecture_is_refused(
    finished, tiny_config, overrides, error, words
):
    with pytest.raises(error, match=words):
        build(tiny_config(init=str(finished), **overrides))


def test_weights_that_do_not_fit_are_refused_with_the_first_misfit(tiny_config):
    narrow = create_model("resnet20_w8")
    initial = Trained(narrow.state_dict(), None, None, {"classes": CLASSES}, "narrow.safetensors")
    with pytest.raises(CheckpointError, match=r"narrow.safetensors does not fit resnet20 \(conv1"):
        apply(create_model("resnet20"), initial, tiny_config(model="resnet20"), CLASSES)


@pytest.mark.parametrize(
    ("init", "words"),
    [
        ("missing-run", "init: no such run directory or checkpoint: missing-run"),
        ("pretrained:resnet1202", "init: no pretrained weights ship for 'resnet1202'"),
        ("pretrained:resnet20.nosuchtag", "init: .*nosuchtag"),
    ],
)
def test_cli_a_bad_init_fails_in_one_line_before_any_data_is_read(
    tmp_path, init, words, cli, monkeypatch
):
    # No data directory: the source is read before the data set is looked for.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path / "no-data-here"))
    r = cli("train", *tiny_flags(), "--init", init, "--out", tmp_path / "run", data_dir=None)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert re.search(words, r.stderr), r.stderr
    assert not (tmp_path / "run").exists()


def test_torchvision_weights_from_the_hub_cache_fine_tune_on_other_classes(
    tiny_config, tmp_path, monkeypatch
):
    # torchvision's resnet18 (its own random init here), saved in the hub cache under the
    # released file name: the ImageNet body loads, the 1,000-class classifier does not.
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    name = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    tv = torchvision.models.resnet18()
    torch.save(tv.state_dict(), tmp_path / "hub" / "checkpoints" / name)
    s = build(tiny_config(model="resnet18", init="pretrained"))
    assert torch.equal(s.model.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    assert s.model.fc.out_features == 10
    with pytest.raises(ConfigError, match="have no tags"):
        build(tiny_config(model="resnet18", init="pretrained:resnet18.v2"))
