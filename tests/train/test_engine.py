"""The training loop on the shipped sample: run directory, resume, stop, divergence."""

import json

import pytest
import torch

from reslab.errors import ConfigError, DivergenceError, UserError
from reslab.train import build_config, load, resume, train
from reslab.train.checkpoint import load_checkpoint
from reslab.train.stop import StopRequested

TINY = {
    "model": "resnet20",
    "dataset": "cifar10-sample",
    "epochs": 2,
    "batch_size": 64,
    "val_split": 200,
    "lr": 0.05,
    "schedule": "cosine",
    "check_every": 7,
    "threads": 2,
}


def tiny(**overrides):
    return build_config(TINY, overrides)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    # One shared data dir, so the decoded sample is cached once for the whole module.
    return str(tmp_path_factory.mktemp("data"))


def _limited(config, sample_dir, max_steps):
    return build_config(
        config.to_dict(), {"data_dir": sample_dir, "max_steps": max_steps, "epochs": config.epochs}
    )


def test_run_directory_holds_everything(tmp_path, sample_dir):
    config = _limited(tiny(), sample_dir, 30)
    result = train(config, tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    for name in (
        "config.toml",
        "metrics.jsonl",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "model.safetensors",
        "summary.json",
    ):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] or rows[-1]["step"] == 30
    for key in (
        "epoch",
        "step",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "epoch_time_s",
        "images_per_s",
    ):
        assert key in rows[0]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 30 and 0 <= summary["test_acc"] <= 1
    assert summary["params"] == 269_722 and result.summary == summary
    loaded = load(run)
    assert loaded.data["classes"][0] == "airplane"
    x = torch.zeros(1, 3, 32, 32)
    torch.testing.assert_close(loaded.model(x), result.model.eval()(x))


def test_existing_run_dir_is_not_overwritten(tmp_path, sample_dir):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="--resume"):
        train(_limited(tiny(), sample_dir, 2), tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "keep.txt").read_text() == "x"


def test_batch_larger_than_split_fails_before_training(tmp_path, sample_dir):
    with pytest.raises(ConfigError, match="larger than the training split"):
        train(_limited(tiny(batch_size=100_000), sample_dir, 2), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, sample_dir):
    config = _limited(tiny(deterministic=True, ema=0.9), sample_dir, 24)
    straight = train(config, tmp_path / "straight", quiet=True)
    with pytest.raises(StopRequested, match="--resume"):
        train(config, tmp_path / "split", quiet=True, should_stop=lambda step: step == 9)
    state = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert state["position"]["step"] == 9
    resumed = resume(tmp_path / "split", quiet=True)
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed.summary["test_acc"] == straight.summary["test_acc"]
    rows = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert rows == (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines() or [
        json.loads(r)["train_loss"] for r in rows
    ] == pytest.approx(
        [
            json.loads(r)["train_loss"]
            for r in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
        ]
    )


def test_resume_rejects_changed_settings(tmp_path, sample_dir):
    train(_limited(tiny(), sample_dir, 3), tmp_path / "run", quiet=True)
    with pytest.raises(ConfigError, match="cannot change lr"):
        resume(tmp_path / "run", {"lr": 0.3}, quiet=True)
    with pytest.raises(UserError, match="nothing to resume"):
        resume(tmp_path / "elsewhere", quiet=True)


def test_divergence_names_the_step_and_keeps_the_last_checkpoint(tmp_path, sample_dir):
    config = _limited(tiny(lr=1e9, schedule="constant", momentum=0.0, epochs=3), sample_dir, 200)
    with pytest.raises(DivergenceError, match=r"at step \d+.*lower learning rate"):
        train(config, tmp_path / "run", quiet=True)


@pytest.mark.parametrize("recipe", ["he2015-cifar", "cosine", "quick", "fast"])
def test_every_recipe_runs_on_the_sample(tmp_path, sample_dir, recipe):
    from reslab.train.recipes import get_recipe

    config = build_config(
        get_recipe(recipe).overrides,
        {
            "dataset": "cifar10-sample",
            "data_dir": sample_dir,
            "max_steps": 2,
            "epochs": 1,
            "batch_size": 32,
            "threads": 2,
            "val_split": 100,
        },
    )
    result = train(config, tmp_path / recipe, quiet=True)
    assert result.summary["steps"] == 2 and 0 <= result.summary["test_acc"] <= 1
