"""`reslab train` and the commands that use its runs, as a user runs them: the shipped sample,
real files; a real subprocess where the process itself is the point (the console command from
training to report once, signals, a missing compiler), the CLI's `main` in this process
elsewhere."""

import json
import signal
import time

import pytest

from reslab.run.checkpoint import load_checkpoint
from reslab.run.config import read_toml
from reslab.run.optim import OPTIMIZERS
from reslab.train import fit
from tests.conftest import run_cli, sample_jpegs, start_cli, tiny_flags
from tests.hostile import write_pickle_payload_checkpoint


def test_train_then_eval_predict_report(tmp_path, data_dir, cli):
    run = tmp_path / "run"
    flags = tiny_flags(max_steps=8, model=None)  # the demo recipe's own resnet20
    r = run_cli("train", "--recipe", "demo", *flags, "--out", run, data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and "Traceback" not in r.stderr
    assert (run / "report.md").is_file() and (run / "curves.png").is_file()
    # Not a terminal: one plain line per epoch.
    assert r.stdout.count("epoch 1 step 8") == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 8

    r = cli("eval", run, "--tta")
    assert r.returncode == 0, r.stderr
    report = json.loads((run / "eval.test-tta.json").read_text())
    assert report["count"] == 1000 and set(report["per_class_acc"]) >= {"cat", "dog"}
    assert sum(map(sum, report["confusion"])) == 1000 and (run / "confusion.test-tta.png").is_file()

    image = tmp_path / "cat.jpg"
    image.write_bytes(sample_jpegs("test")["cat"][0])
    r = cli("predict", run, image, "--top-k", "2", "--json")
    assert r.returncode == 0, r.stderr
    (pred,) = json.loads(r.stdout)
    assert len(pred["top"]) == 2 and pred["top"][0]["prob"] >= pred["top"][1]["prob"]

    r = cli("export", run, "--format", "onnx", "--fold-bn", "--out", tmp_path / "m.onnx")
    assert r.returncode == 0, r.stderr
    assert "19 BatchNorm layers folded" in r.stdout and (tmp_path / "m.onnx").stat().st_size > 1e5

    r = cli("report", run, run, "--out", tmp_path / "cmp")
    assert r.returncode == 0 and (tmp_path / "cmp" / "report.md").is_file()


def test_train_with_shifted_tta_scores_what_eval_with_the_same_flags_scores(tmp_path, cli):
    run = tmp_path / "run"
    r = cli("train", *tiny_flags(tta=True, tta_shift=2, val_split=0), "--out", run)
    assert r.returncode == 0, r.stderr
    assert "tta_shift = 2" in (run / "config.toml").read_text()
    r = cli("eval", run, "--tta", "--tta-shift", "2")
    assert r.returncode == 0, r.stderr
    evaluation = json.loads((run / "eval.test-tta-shift2.json").read_text())
    assert evaluation["top1"] == json.loads((run / "summary.json").read_text())["test_acc"]


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        (["eval", "{missing}"], "no such run directory"),
        (["predict", "{run}", "{text}"], "is not an image Pillow can read"),
        (["predict", "{run}", "{missing}"], "image not found"),
        (["export", "{run}", "--format", "tflite"], "invalid choice"),
        (["eval", "{hostile}"], "refused to load"),
        (["eval", "{truncated}"], "corrupt or truncated"),
        (["report", "{tmp}"], "not a run directory"),
    ],
)
def test_user_errors_of_the_other_commands(tmp_path, cli, trained, command, needle):
    (tmp_path / "notes.txt").write_text("hello")
    hostile = tmp_path / "hostile.pt"
    write_pickle_payload_checkpoint(hostile, tmp_path / "PWNED")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((trained / "checkpoints" / "last.pt").read_bytes()[:5000])
    names = dict(
        missing=tmp_path / "nope",
        run=trained,
        text=tmp_path / "notes.txt",
        hostile=hostile,
        truncated=truncated,
        tmp=tmp_path,
    )
    r = cli(*[c.format(**names) for c in command])
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "PWNED").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_config):
    run = tmp_path_factory.mktemp("trained") / "run"
    fit(tiny_config(max_steps=2), run, quiet=True)
    return run


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--lr", "0"], "lr: bad value"),
        (["--lr", "fast"], "invalid float value"),
        (["--batch-size", "0"], "batch_size"),
        (["--epochs", "0", "--max-steps", "0"], "epochs"),
        (["--optimizer", "adagrad"], f"allowed: {', '.join(OPTIMIZERS)}"),
        (["--recipe", "nope"], "recipe: unknown value"),
        (["--model", "resnet2O"], "did you mean"),
        (["--dataset", "no-such-set"], "no-such-set"),
        (["--dataset", "folder:/does/not/exist"], "/does/not/exist"),
        (["--config", "/does/not/exist.toml"], "config file not found"),
        (["--batch-size", "100000"], "larger than the training split"),
        (["--bogus"], "unrecognized arguments"),
        (["--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_write_nothing(tmp_path, cli, args, needle):
    out = tmp_path / "run"
    r = cli("train", *tiny_flags(), *args, "--out", out)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not out.exists()


def test_train_takes_muon_and_its_lr(tmp_path, cli):
    run = tmp_path / "run"
    r = cli("train", *tiny_flags(max_steps=2), "--optimizer", "muon", "--muon-lr", "0.03",
            "--out", run)  # fmt: skip
    assert r.returncode == 0, r.stderr
    saved = read_toml(run / "config.toml")
    assert (saved["optimizer"], saved["muon_lr"]) == ("muon", 0.03)
    groups = load_checkpoint(run / "checkpoints" / "last.pt")["optimizer"]["param_groups"]
    assert [g["muon"] for g in groups] == [False, True]


def test_unknown_config_key_in_toml(tmp_path, cli):
    cfg = tmp_path / "c.toml"
    cfg.write_text('model = "resnet20"\nlerning_rate = 0.1\n')
    r = cli("train", "--config", cfg, *tiny_flags(), "--out", tmp_path / "run")
    assert r.returncode == 2 and "unknown config key 'lerning_rate'" in r.stderr


def test_sigint_writes_a_checkpoint_and_says_how_to_resume(tmp_path, data_dir, cli):
    run = tmp_path / "run"
    # data_dir's cache holds the decoded sample: the signal lands in training, not decoding.
    flags = tiny_flags(epochs=50, max_steps=None, check_every=1)
    proc = start_cli("train", *flags, "--out", run, data_dir=data_dir)
    deadline = time.time() + 120
    while not (run / "config.toml").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"reslab train --resume {run}" in err and "Traceback" not in err
    stopped_at = load_checkpoint(run / "checkpoints" / "last.pt")["position"]["step"]
    assert stopped_at > 0
    # Resume to a few steps past wherever the signal landed (how far 3 s get varies).
    r = cli("train", "--resume", run, "--max-steps", stopped_at + 5)
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "summary.json").read_text())["steps"] == stopped_at + 5


def test_divergence_exits_3(tmp_path, cli):
    flags = tiny_flags(max_steps=None, lr=1e6, momentum=0, schedule="constant", check_every=1)
    r = cli("train", *flags, "--out", tmp_path / "run")
    assert r.returncode == 3, r.stderr
    assert "at step" in r.stderr and "lower learning rate" in r.stderr


@pytest.mark.slow
def test_compile_without_a_cxx_compiler_trains_eagerly(tmp_path, data_dir):
    # Inductor's CPU backend needs a C++ compiler; a machine without one still trains. (The
    # fallback itself is tested on a failing backend in tests/train/test_runtime.py.)
    r = run_cli(
        "train",
        *tiny_flags(max_steps=2),
        "--compile",
        "--quiet",
        "--out",
        tmp_path / "run",
        data_dir=data_dir,
        extra_env={"CXX": str(tmp_path / "no-such-g++"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr
    assert "torch.compile failed, training continues without it" in r.stderr
    assert "InvalidCxxCompiler" in r.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 2
