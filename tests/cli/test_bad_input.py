"""Every flag of `reslab train` with a wrong type or an out-of-range value: exit 2, one line,
no traceback, nothing written. Run in-process through the same `main` the console script calls."""

import typing

import pytest

from reslab.cli import main
from reslab.run.config import FIELDS, TrainConfig, flag

HINTS = typing.get_type_hints(TrainConfig)
WRONG_TYPE = {int: "1.5x", float: "fast", str: None, bool: None}
OUT_OF_RANGE = {
    "lr": "-0.1",
    "batch_size": "0",
    "momentum": "1.5",
    "weight_decay": "-1",
    "label_smoothing": "1",
    "ema": "1.0",
    "warmup_epochs": "-2",
    "gamma": "0",
    "step_size": "2",
    "val_split": "-5",
    "crop_padding": "-1",
    "cutout": "-1",
    "threads": "-1",
    "check_every": "0",
    "max_steps": "-1",
    "epochs": "-3",
    "seed": "-1",
    "optimizer": "adagrad",
    "schedule": "poly",
    "norm": "layernorm",
    "shortcut": "D",
    "precision": "fp8",
    "device": "tpu",
    "model": "vgg16",
    "dataset": "imagenet-1k",
    "milestones": "0.9 0.1",
    "checkpoint_every": "-1",
    "tta_shift": "9",
}
# Values that parse as numbers but no run could mean: refused up front, in one line.
ABSURD = {
    "warmup_epochs": ["inf", "1e300", "nan"],
    "weight_decay": ["inf", "1e300"],
    "lr": ["inf", "1e9", "0"],
    "epochs": ["1000000000000"],
    "batch_size": ["99999999999"],
    "seed": ["99999999999999999999999"],
    "label_smoothing": ["nan"],
}


def _run(capsys, args):
    code = main(args)
    err = capsys.readouterr().err
    return code, err


CASES = [(k, WRONG_TYPE[HINTS[k]]) for k in FIELDS if WRONG_TYPE.get(HINTS[k])]
CASES += [(k, v) for k, v in OUT_OF_RANGE.items()]
CASES += [(k, v) for k, values in ABSURD.items() for v in values]


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}={v}" for k, v in CASES])
def test_bad_flag_values(tmp_path, capsys, monkeypatch, key, value):
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path / "data"))
    out = tmp_path / "run"
    args = ["train", "--dataset", "cifar10-sample", "--epochs", "1", "--out", str(out)]
    args += [flag(key), *value.split()]
    code, err = _run(capsys, args)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert key in err or key.replace("_", "-") in err or value.split()[0] in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--resume", "{tmp}/r", "--recipe", "demo"], "--resume takes its settings"),
        (["train", "--resume", "{tmp}/nothing"], "nothing to resume"),
        (["train", "--config", "{tmp}/missing.toml"], "config file not found"),
        (["train", "--config", "{tmp}"], "cannot read config file"),
        (
            ["train", "--out", "{tmp}/file.txt", "--dataset", "cifar10-sample", "--epochs", "1"],
            "is a file, not a folder",
        ),
        (["eval", "{tmp}/nope"], "no such run directory"),
        (
            ["predict", "{tmp}/nope", "x.jpg", "--top-k", "0"],
            "argument --top-k: expected an integer >= 1, not '0'",
        ),
        (["experiment", "nope"], "experiment: unknown name"),
        (["experiment", "batchnorm", "--budget", "huge"], "budget: unknown value"),
        (["experiment", "batchnorm", "--seeds", "0"], "argument --seeds: expected an integer >= 1"),
        (["experiment", "degradation", "--epochs", "0"], "argument --epochs: expected an integer"),
        (["experiment", "gradients", "--epochs", "3"], "gradients trains a fixed number of steps"),
        (["models", "--no-such-flag"], "unrecognized arguments"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["train", "--time-budget", "-5"], "time_budget: '-5' is negative"),
        (["predict", "--pretrained", "resnet20"], "predict: no image files given"),
        (["train", "--tta-shift", "2", "--out", "{tmp}/r"], "tta_shift: 2 shifts the TTA views"),
    ],
)
def test_bad_commands(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path / "data"))
    (tmp_path / "file.txt").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = _run(capsys, [a.format(tmp=tmp_path) for a in args])
    assert code == 2 and needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_help_lists_generated_choices_and_no_doubled_negations(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # no line wrapping inside names
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--no-no-" not in text and "one of NORMS" not in text
    assert "fast" in text and "cifar-onecycle" in text  # every recipe, from the table
    assert "--decay-norm-bias" in text and "--no-decay-norm-bias" in text


def test_decay_flags_set_the_key_both_ways():
    from reslab.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "--no-decay-norm-bias"]).no_decay_norm_bias is True
    assert parser.parse_args(["train", "--decay-norm-bias"]).no_decay_norm_bias is False
    assert parser.parse_args(["train"]).no_decay_norm_bias is None  # not given: recipe decides
