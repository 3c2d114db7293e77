"""Where results go, as a user meets it: every output path is checked before any work (one line,
exit 2, nothing left behind), outputs of shipped weights land in one documented folder, one
evaluation never overwrites another, files follow the umask. In-process through the CLI's
`main`, on a real run directory."""

import json
import os

import pytest

from tests.conftest import tiny_flags


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


CASES = [
    (["eval", "{run}", "--out", "{file}"], "--out {file} is a file, not a folder"),
    (["eval", "{run}", "--out", "{ro}/x"], "cannot write into {ro}"),
    (["export", "{run}", "--format", "onnx", "--out", "{tmp}"], "--out {tmp} is a folder"),
    (["export", "{run}", "--format", "onnx", "--out", "{ro}/x.onnx"], "cannot write into {ro}"),
    (["export", "{run}", "--format", "onnx", "--out", "{tmp}/no/x.onnx"], "does not exist"),
    (["report", "{run}", "--out", "{file}"], "--out {file} is a file, not a folder"),
    (["report", "{run}", "--out", "{ro}/rep"], "cannot write into {ro}"),
    (["train", *tiny_flags(), "--out", ""], "--out is empty"),
    (["train", *tiny_flags(), "--out", "{file}"], "--out {file} is a file"),
    (["train", *tiny_flags(), "--out", "{ro}/r"], "cannot write into {ro}"),
    (["train", *tiny_flags(), "--data-dir", "{file}", "--out", "{tmp}/r"], "{file} is a file"),
    (["eval", "{run}", "--data-dir", "{file}"], "data directory {file} is a file"),
    (["experiment", "batchnorm", "--out", "{file}"], "--out {file} is a file"),
]


@pytest.mark.parametrize(
    ("args", "needle"), CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CASES]
)
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(
    cli, run_copy, tmp_path, unwritable_dir, args, needle
):
    names = {"run": run_copy, "file": tmp_path / "file.txt", "ro": unwritable_dir, "tmp": tmp_path}
    names["file"].write_text("x")
    before = _tree(tmp_path)
    r = cli(*[a.format(**names) for a in args])
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert needle.format(**names) in r.stderr
    assert _tree(tmp_path) == before


def test_shipped_weights_in_a_read_only_folder_are_refused_before_evaluating(
    cli, unwritable_dir, monkeypatch
):
    import reslab.infer

    def evaluate(*args, **kwargs):
        raise AssertionError("evaluated before checking where the results go")

    monkeypatch.setattr(reslab.infer, "evaluate", evaluate)
    monkeypatch.chdir(unwritable_dir)
    r = cli("eval", "--pretrained", "resnet20", "--dataset", "cifar10-sample")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "output runs/pretrained/resnet20: cannot write into ." in r.stderr


def test_shipped_weights_write_under_runs_pretrained_and_files_follow_the_umask(
    cli, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        r = cli("export", "--pretrained", "resnet20", "--format", "safetensors")
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "runs" / "pretrained" / "resnet20" / "model-export.safetensors"
    assert out.is_file() and out.stat().st_mode & 0o777 == 0o644
    r = cli("eval", "--pretrained", "resnet20", "--dataset", "cifar10-sample")
    assert r.returncode == 0, r.stderr
    assert (out.parent / "eval.json").is_file() and (out.parent / "confusion.png").is_file()


def test_export_of_a_run_goes_beside_it(cli, run_copy):
    r = cli("export", run_copy, "--format", "safetensors")
    assert r.returncode == 0, r.stderr
    assert (run_copy / "model-export.safetensors").is_file()


def test_each_split_and_tta_keeps_its_own_result_and_the_report_shows_all(cli, run_copy):
    first = cli("eval", run_copy)
    second = cli("eval", run_copy, "--split", "val", "--tta")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.startswith("test: top-1 ") and "top-5" in first.stdout
    assert second.stdout.startswith("val with TTA: top-1 ")
    test = json.loads((run_copy / "eval.json").read_text())
    val = json.loads((run_copy / "eval.val-tta.json").read_text())
    assert (test["split"], test["tta"], test["count"]) == ("test", False, 1000)
    assert (val["split"], val["tta"], val["count"]) == ("val", True, 100)
    assert (run_copy / "confusion.val-tta.png").is_file()
    r = cli("report", run_copy)
    assert r.returncode == 0, r.stderr
    text = (run_copy / "report.md").read_text()
    assert "`reslab eval`, test split, without test-time augmentation" in text
    assert "`reslab eval --split val --tta`, val split, with flip test-time augmentation" in text


def test_tta_with_shifts_keeps_its_own_result_beside_the_flips_and_says_which(cli, run_copy):
    flips = cli("eval", run_copy, "--tta")
    shifts = cli("eval", run_copy, "--tta", "--tta-shift", "2")
    assert flips.returncode == 0 and shifts.returncode == 0, flips.stderr + shifts.stderr
    assert flips.stdout.startswith("test with TTA: top-1 ")
    assert shifts.stdout.startswith("test with TTA (flips, 2-pixel shifts): top-1 ")
    assert "eval.test-tta-shift2.json and " in shifts.stdout
    flip = json.loads((run_copy / "eval.test-tta.json").read_text())
    shift = json.loads((run_copy / "eval.test-tta-shift2.json").read_text())
    assert (flip["tta_shift"], shift["tta"], shift["tta_shift"], shift["count"]) == (
        0,
        True,
        2,
        1000,
    )
    assert shift["loss"] != flip["loss"] and (run_copy / "confusion.test-tta-shift2.png").is_file()
    assert cli("report", run_copy).returncode == 0
    text = (run_copy / "report.md").read_text()
    assert (
        "`reslab eval --tta --tta-shift 2`, test split, with flip and 2-pixel translation" in text
    )
    assert "`reslab eval --tta`, test split, with flip test-time augmentation" in text


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--tta", "--tta-shift", "-1"], "tta_shift: bad value -1; expected an integer in [0, 8]"),
        (["--tta", "--tta-shift", "9"], "tta_shift: bad value 9"),
        (["--tta", "--tta-shift", "x"], "argument --tta-shift: invalid int value: 'x'"),
        (["--tta-shift", "2"], "tta_shift: 2 shifts the TTA views, but tta is off; add --tta"),
    ],
)
def test_a_bad_tta_shift_is_one_line_before_the_model_loads(
    cli, run_copy, monkeypatch, flags, needle
):
    import reslab.infer

    def load(*args, **kwargs):
        raise AssertionError("loaded the model before checking --tta-shift")

    monkeypatch.setattr(reslab.infer, "load", load)
    before = _tree(run_copy)
    r = cli("eval", run_copy, *flags)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert _tree(run_copy) == before


def test_eval_with_the_training_augmentation_left_on_is_kept_apart_and_repeatable(cli, run_copy):
    plain = cli("eval", run_copy)
    augmented = cli("eval", run_copy, "--augmented")
    assert plain.returncode == 0 and augmented.returncode == 0, augmented.stderr
    assert augmented.stdout.startswith("test with the training augmentation on: top-1 ")
    first = json.loads((run_copy / "eval.test-augmented.json").read_text())
    assert (first["augmented"], first["count"]) == (True, 1000)
    assert (run_copy / "confusion.test-augmented.png").is_file()
    assert first["loss"] != json.loads((run_copy / "eval.json").read_text())["loss"]
    assert cli("eval", run_copy, "--augmented").returncode == 0  # the crops come from a seed
    assert json.loads((run_copy / "eval.test-augmented.json").read_text()) == first
    assert cli("report", run_copy).returncode == 0
    text = (run_copy / "report.md").read_text()
    assert "`reslab eval --augmented`, test split, without test-time augmentation and with " in text


def test_a_config_file_that_sets_a_command_line_option_says_so(cli, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('out = "x"\n')
    r = cli("train", "--config", config, *tiny_flags())
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "out (in " in r.stderr and "is a command-line option" in r.stderr
    assert "cutout" not in r.stderr


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_metadata_holds_json_values(cli, run_copy, tmp_path):
    import torch

    from reslab.models.export import TORCHSCRIPT_METADATA

    r = cli("export", run_copy, "--format", "torchscript", "--out", tmp_path / "m.pt")
    assert r.returncode == 0, r.stderr
    extra = {TORCHSCRIPT_METADATA: ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    meta = json.loads(extra[TORCHSCRIPT_METADATA])
    assert meta["classes"][:2] == ["airplane", "automobile"] and meta["image_size"] == [32, 32]
