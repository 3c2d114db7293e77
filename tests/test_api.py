"""The top-level Python API as a user calls it: reslab.fit, reslab.evaluate, reslab.load,
reslab.predict."""

import pytest

import reslab
from reslab.errors import CheckpointError
from tests.conftest import tiny_settings


def test_train_evaluate_load(tmp_path, reslab_data):
    config = reslab.build_config(tiny_settings(max_steps=3))
    result = reslab.fit(config, tmp_path / "run", quiet=True)
    assert isinstance(result, reslab.TrainResult)
    assert result.summary["steps"] == 3
    ev = reslab.evaluate(tmp_path / "run")
    assert isinstance(ev, reslab.Evaluation)
    assert ev.count == 1000 and ev.classes[3] == "cat" and ev.split == "test"
    assert ev.top1 == pytest.approx(result.summary["test_acc"])
    assert sum(ev.confusion.diagonal()) == round(ev.top1 * ev.count)
    loaded = reslab.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert loaded.config.model == "small_cnn" and not loaded.model.training
    assert not (tmp_path / "run" / "tensorboard").exists()  # only when asked for


def test_weights_of_another_model_are_a_clear_error(tmp_path, monkeypatch):
    from reslab.run.checkpoint import save_weights

    monkeypatch.setenv("RESLAB_DATA", str(tmp_path / "data"))
    config = reslab.build_config({"dataset": "cifar10-sample", "epochs": 1, "model": "resnet32"})
    data = {
        "classes": [str(i) for i in range(10)],
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
        "in_channels": 3,
        "image_size": [32, 32],
        "dataset": "cifar10-sample",
    }
    wrong = reslab.create_model("resnet20").state_dict()  # weights of resnet20, config resnet32
    save_weights(tmp_path / "w.safetensors", wrong, {"config": config.to_dict(), "data": data})
    with pytest.raises(CheckpointError, match="does not fit model 'resnet32'"):
        reslab.load(tmp_path / "w.safetensors")


def test_progress_bar_on_a_terminal(caplog):
    from reslab.train.progress import ProgressDisplay

    caplog.set_level("INFO", logger="reslab")
    display = ProgressDisplay(total_epochs=2, enabled=True)
    display.start_epoch(0, total_batches=10)
    display.update(5, loss=1.5, acc=0.4, lr=0.1, images_per_s=500)
    row = {
        "epoch": 1,
        "step": 10,
        "train_loss": 1.2,
        "train_acc": 0.5,
        "val_loss": None,
        "val_acc": None,
        "lr": 0.1,
        "epoch_time_s": 2.0,
        "images_per_s": 500.0,
    }
    display.end_epoch(row)
    assert "epoch 1 step 10 train_loss 1.2000 train_acc 50.0% val_loss - val_acc -" in caplog.text


def test_piped_progress_has_a_header_and_lines_by_the_clock(tmp_path, data_dir, caplog, capsys):
    """Piped (not a terminal): a header first, then a line every PIPED_EVERY_S seconds inside
    the epoch; the library prints nothing itself: it logs, and its caller decides."""
    import reslab.train.progress as progress

    caplog.set_level("INFO", logger="reslab")
    progress.PIPED_EVERY_S = 0.0  # every step, here
    try:
        config = reslab.build_config({"data_dir": str(data_dir), **tiny_settings(max_steps=4)})
        reslab.fit(config, tmp_path / "run", live=False)
    finally:
        progress.PIPED_EVERY_S = 30.0
    lines = caplog.text.splitlines()
    header = next(i for i, line in enumerate(lines) if "small_cnn (924,074 params" in line)
    assert "3,900 train / 100 val / 1,000 test images; cpu, fp32" in lines[header]
    assert any("epoch 1/1 step 2/4 " in line and "run ends in" in line for line in lines)
    assert capsys.readouterr().out == ""


def test_tensorboard_asked_for_and_missing_is_one_line_before_any_work(tmp_path, monkeypatch):
    import importlib.util

    from reslab.errors import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "tensorboard" else real(n, *a)
    )
    config = reslab.build_config({"dataset": "cifar10-sample", "epochs": 1, "tensorboard": True})
    with pytest.raises(ConfigError, match=r"pip install 'reslab\[tensorboard\]'"):
        reslab.fit(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
