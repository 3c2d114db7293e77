"""Run directories read back: finished, unfinished and crashed ones; `fake_run` builds them."""

import json

import pytest

from reslab.errors import UserError
from reslab.report import load_run


def fake_run(path, lr=0.1, epochs=4, summary=True, truncated=False, val=True, evaluation=None):
    """A run directory as the training engine writes it (see reslab.run.directory)."""
    path.mkdir(parents=True)
    (path / "config.toml").write_text(
        'model = "resnet20"\ndataset = "cifar10-sample"\nnorm = "batchnorm"\n'
        f'optimizer = "sgd"\nlr = {lr}\nbatch_size = 128\nepochs = {epochs + truncated}\n'
    )
    rows = [
        {
            "epoch": e,
            "step": 10 * e,
            "train_loss": 2 / e,
            "train_acc": 0.2 * e / 4 + 0.1,
            "val_loss": 2.1 / e if val else None,
            "val_acc": 0.2 * e / 4 if val else None,
            "lr": lr / e,
            "epoch_time_s": 1.0,
            "images_per_s": 500.0,
        }
        for e in range(1, epochs + 1)
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (path / "metrics.jsonl").write_text(text + ('{"epoch": 5, "ste' if truncated else ""))
    if summary:
        s = {
            "model": "resnet20",
            "dataset": "cifar10-sample",
            "params": 269722,
            "epochs": epochs,
            "steps": 10 * epochs,
            "best_epoch": epochs,
            "best_val_acc": 0.2,
            "test_loss": 1.6,
            "test_acc": 0.215,
            "test_top5": 0.7,
            "wall_time_s": 12.5,
            "images_per_s": 480.0,
        }
        (path / "summary.json").write_text(json.dumps(s))
    if evaluation:
        (path / "eval.json").write_text(json.dumps(evaluation))
    return path


def test_finished_run(tmp_path):
    run = load_run(fake_run(tmp_path / "r0"))
    assert run.name == "r0" and run.finished
    assert run.config["lr"] == 0.1 and run.summary["test_acc"] == 0.215
    assert run.column("epoch") == [1, 2, 3, 4] and run.last()["step"] == 40
    assert run.evaluations == []


def test_crashed_run_skips_the_cut_line_and_has_no_summary(tmp_path):
    with pytest.warns(UserWarning, match=r"unreadable line 5 \(cut short by a crash\?\)"):
        run = load_run(fake_run(tmp_path / "crashed", summary=False, truncated=True))
    assert not run.finished and run.summary == {}
    assert [r["epoch"] for r in run.metrics] == [1, 2, 3, 4]


def test_corrupt_middle_line_is_skipped_with_a_warning(tmp_path):
    path = fake_run(tmp_path / "r")
    lines = (path / "metrics.jsonl").read_text().splitlines()
    lines[1] = "garbage"
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="line 2 .corrupt"):
        run = load_run(path)
    assert run.column("epoch") == [1, 3, 4]


def test_run_without_metrics_yet(tmp_path):
    path = fake_run(tmp_path / "fresh", summary=False)
    (path / "metrics.jsonl").unlink()
    run = load_run(path)
    assert run.metrics == [] and run.last() == {}


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_not_a_run_directory(tmp_path, make):
    path = tmp_path / "x"
    if make == "empty":
        path.mkdir()
    elif make == "file":
        path.write_text("hi")
    with pytest.raises(UserError, match=f"{path} is not a run directory"):
        load_run(path)


def test_bad_config_is_a_user_error(tmp_path):
    path = fake_run(tmp_path / "r")
    (path / "config.toml").write_text("model = ")
    with pytest.raises(UserError, match="not valid TOML"):
        load_run(path)
