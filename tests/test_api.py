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
    assert loaded.config.model == "resnet20" and not loaded.model.training
    try:  # tensorboard is optional; when installed, its event files are in the run
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:
        assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_weights_of_another_model_are_a_clear_error(tmp_path, monkeypatch):
    from reslab.train.checkpoint import save_weights

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


def test_progress_bar_on_a_terminal(capsys):
    from reslab.train.progress import ProgressDisplay

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
    out = capsys.readouterr().out
    assert "epoch 1 step 10 train_loss 1.2000 train_acc 50.0% val_loss - val_acc -" in out
