"""The README's promise for bad input, fuzzed: random bad command lines and config files for every
subcommand (unknown flags and values, wrong types, negative, zero, NaN and infinite numbers,
missing paths, files where folders go and folders where files go, unwritable folders, unicode,
very long names). Each must end with exit code 2 and exactly one line on stderr that names the
bad value, no traceback, no warning, nothing left behind, and an existing run directory
unchanged.

Each case is a command that would do real work (train, evaluate, export, write a report) with
exactly one bad part, so a bad part that slips through shows as work done. Cases come from a
generator seeded with SEED: case N of a failure is reproduced by `cases(SEED)` again. The
default suite runs FAST cases in this process, through the CLI's `main`, and a handful in real
processes; `-m slow` runs SLOW cases.
"""

from __future__ import annotations

import hashlib
import random
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from reslab.cli import main
from tests.conftest import run_cli, sample_jpegs, tiny_flags

SEED = 31
FAST, SLOW = 1000, 5000

# Values no key of the type accepts. time_budget reads text ("10m"), so negative text is bad.
BAD_INT = ["1.5", "1.5x", "nan", "inf", "", "①", "1e3", "-2", "99999999999999999999999", "0x1f"]
BAD_FLOAT = ["nan", "inf", "-inf", "1e309", "-1", "fast", "", "1.5x", "1e400", "-0.5"]
BAD_TEXT = ["zzz", "", "ünïcødé", "x" * 300, "-", "a b", "\t"]
BAD_LIST = ["0.9 0.1", "nan", "2", "-0.5", "x", "0.5 0.5", "inf"]
# A config file's value of the wrong TOML type for each kind of key.
WRONG_TOML = {
    "int": ['"3"', "1.5", "true", "[1]"],
    "float": ['"x"', "true", "[0.1]", "nan"],
    "str": ["1", "true", "[]", "{a = 1}"],
    "bool": ['"yes"', "1", "[]"],
    "text": ["true", "[1]", '"-5"', '"soon"'],
    "list": ['"0.5"', '["a"]', "0.5"],
}


@dataclass
class World:
    """The files a case may name, all inside `tmp`."""

    tmp: Path
    run: Path  # a finished run directory, never to change
    file: Path  # a plain text file
    image: Path  # a real JPEG
    ro: Path  # a folder this process cannot write into

    def missing(self, rng: random.Random) -> Path:
        return self.tmp / rng.choice(["nope", "données/ü", "a" * 300, "x/y/z.pt", "é.jpg"])


@dataclass
class Case:
    argv: list[str]
    needle: str | tuple[str, ...]  # what the one line must name (one of these)


def _config_flag_case(rng: random.Random, w: World) -> Case:
    from reslab.cli import _tables

    keys = _tables()["config"]
    name = rng.choice(list(keys))
    key = keys[name]
    base = ["train", *tiny_flags(), "--out", str(w.tmp / "new-run")]
    kind = key["type"]
    if kind == "bool":
        return Case([*base, f"{key['flags'][0]}={rng.choice(['yes', '1', ''])}"], key["flags"][0])
    if kind == "list":
        value = rng.choice(BAD_LIST)
        return Case([*base, key["flags"][0], *value.split()], name)
    if name == "data_dir":  # any folder name will do for data; a file will not
        return Case([*base, "--data-dir", str(w.file)], str(w.file))
    pool = {"int": BAD_INT, "float": BAD_FLOAT, "text": [*BAD_FLOAT, "soon"], "str": BAD_TEXT}
    value = rng.choice(pool[kind])
    if name == "init" and value in ("", "-"):
        value = "zzz"  # '' is random initialization, a valid choice
    flag = key["flags"][0]
    return Case([*base, f"{flag}={value}"], (value, name, flag) if value.strip() else (name, flag))


def _config_file_case(rng: random.Random, w: World) -> Case:
    from reslab.cli import _tables

    keys = _tables()["config"]
    path = w.tmp / rng.choice(["c.toml", "réglages.toml"])
    choice = rng.randrange(6)
    if choice == 0:
        name = rng.choice(list(keys))
        text, needle = f"{name} = {rng.choice(WRONG_TOML[keys[name]['type']])}\n", name
    elif choice == 1:
        name = rng.choice(["lerning_rate", "epoch", "batchsize", "Model", "ünïcode"])
        text, needle = f'"{name}" = 1\n', name
    elif choice == 2:
        name = rng.choice(["out", "force", "resume", "quiet", "nproc", "verbose"])
        text, needle = f"{name} = 1\n", name
    elif choice == 3:
        text, needle = rng.choice(["epochs = \n", "[train\n", "lr = 0.1 0.2\n", "= 3\n"]), "TOML"
    elif choice == 4:
        path.write_bytes(b"lr = \xff\xfe\n")
        return Case(["train", "--config", str(path), *tiny_flags()], path.name)
    else:
        return Case(["train", "--config", str(rng.choice([w.missing(rng), w.tmp])), *tiny_flags()],
                    "config file")  # fmt: skip
    path.write_text(text)
    return Case(["train", "--config", str(path), *tiny_flags()], needle)


def _model_path_case(rng: random.Random, w: World) -> tuple[list[str], str]:
    """A model argument that is not one, or shipped weights that do not exist."""
    bad = rng.choice([w.missing(rng), w.file, w.tmp, w.image, w.run / "config.toml"])
    if rng.random() < 0.2:
        name = rng.choice(["resnet99", "resnet20.nope", "ü", "x" * 200, "resnet18"])
        return ["--pretrained", name], name
    return [str(bad)], str(bad)


def _eval_case(rng: random.Random, w: World) -> Case:
    choice = rng.randrange(8)
    run = str(w.run)
    if choice == 0:
        model, needle = _model_path_case(rng, w)
        return Case(["eval", *model, "--dataset", "cifar10-sample"], needle)
    if choice == 1:
        value = rng.choice(["train", "TEST", "", "välid"])
        return Case(["eval", run, "--split", value], value or "--split")
    if choice == 2:
        value = rng.choice(["tpu", "gpu", "", "cuda:x"])
        return Case(["eval", run, "--device", value], value or "--device")
    if choice == 3:
        value = rng.choice(["imagenet", "ü", "folder:", f"folder:{w.missing(rng)}", "x" * 300])
        return Case(["eval", run, "--dataset", value], value.removeprefix("folder:") or "folder:")
    if choice == 4:
        return Case(["eval", run, "--data-dir", str(w.file)], str(w.file))
    if choice == 5:
        out = rng.choice([w.file, w.ro / "x", w.tmp / ("o" * 300), w.file / "x"])
        return Case(["eval", run, "--out", str(out)], str(out))
    if choice == 6:
        return Case(["eval", run, "--pretrained", "resnet20"], "--pretrained")
    return Case(["eval", run, rng.choice(["--bogus", "--tta=1", "--splitt"])], "--")


def _predict_case(rng: random.Random, w: World) -> Case:
    choice = rng.randrange(5)
    run, image = str(w.run), str(w.image)
    if choice == 0:
        value = rng.choice(["0", "-1", "x", "1.5", "", "nan"])
        return Case(["predict", run, image, "--top-k", value], value or "--top-k")
    if choice == 1:
        bad = rng.choice([w.missing(rng), w.file, w.tmp, w.run / "model.safetensors"])
        return Case(["predict", run, str(bad)], str(bad))
    if choice == 2:
        model, needle = _model_path_case(rng, w)
        return Case(["predict", *model, image], needle)
    if choice == 3:
        return Case(["predict", run], run)
    return Case(["predict", run, image, "--device", "tpu"], "tpu")


def _export_case(rng: random.Random, w: World) -> Case:
    choice = rng.randrange(5)
    base = ["export", str(w.run)]
    if choice == 0:
        value = rng.choice(["tflite", "ONNX", "", "ü"])
        return Case([*base, "--format", value], value or "--format")
    if choice == 1:
        return Case([*base, "--format", "onnx", "--input", rng.choice(["int16", "x"])], "--input")
    if choice == 2:
        return Case([*base, "--format", "safetensors", "--input", "uint8"], "--input")
    if choice == 3:
        out = rng.choice([w.tmp, w.ro / "x.onnx", w.tmp / "no" / "x.onnx", w.file / "x.onnx",
                          w.tmp / ("m" * 300 + ".onnx"), w.run])  # fmt: skip
        return Case([*base, "--format", "onnx", "--out", str(out)], str(out))
    model, needle = _model_path_case(rng, w)
    return Case(["export", *model, "--format", "onnx", "--out", str(w.tmp / "m.onnx")], needle)


def _report_case(rng: random.Random, w: World) -> Case:
    if rng.random() < 0.5:
        bad = rng.choice([w.missing(rng), w.file, w.tmp / "empty"])
        (w.tmp / "empty").mkdir(exist_ok=True)
        return Case(["report", str(w.run), str(bad), "--out", str(w.tmp / "rep")], str(bad))
    out = rng.choice([w.file, w.ro / "rep", w.tmp / ("r" * 300), w.file / "rep"])
    return Case(["report", str(w.run), "--out", str(out)], str(out))


def _experiment_case(rng: random.Random, w: World) -> Case:
    choice = rng.randrange(6)
    base = ["experiment", "batchnorm", "--out", str(w.tmp / "exp")]
    if choice == 0:
        name = rng.choice(["nope", "", "BatchNorm", "ü"])
        return Case(["experiment", name, "--out", str(w.tmp / "exp")], name or "experiment")
    if choice == 1:
        value = rng.choice(["huge", "", "QUICK"])
        return Case([*base, "--budget", value], value or "budget")
    if choice == 2:
        value = rng.choice(["0", "-1", "x", "1.5"])
        return Case([*base, "--seeds", value], value)
    if choice == 3:
        value = rng.choice(["0", "-3", "x", ""])
        return Case([*base, "--parallel", value], value or "--parallel")
    if choice == 4:
        value = rng.choice(["vgg16", "ü", "resnet"])
        return Case([*base, "--model", value], value)
    out = rng.choice([w.file, w.ro / "exp", w.tmp / ("e" * 300)])
    return Case(["experiment", "batchnorm", "--out", str(out)], str(out))


def _top_case(rng: random.Random, w: World) -> Case:
    argv = rng.choice([[], ["--bogus"], ["trian"], ["models", "--x"], ["models", "densenet*"],
                       ["ü"], ["models", "a", "b"]])  # fmt: skip
    return Case(argv, argv[-1] if argv else "command")


GENERATORS = [
    _config_flag_case, _config_flag_case, _config_file_case, _eval_case, _predict_case,
    _export_case, _report_case, _experiment_case, _top_case,
]  # fmt: skip


def cases(seed: int, n: int, world: World):
    rng = random.Random(seed)
    for i in range(n):
        yield i, rng.choice(GENERATORS)(rng, world)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file's size and mtime, every folder's name. (A folder's own mtime may change:
    reslab tests that it can write into a folder by creating and removing a file there.)"""
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (0, 0)
        for p in folder.rglob("*")
    }


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p).encode() + (p.read_bytes() if p.is_file() else b"/"))
    return h.hexdigest()


def _problems(code: int, err: str, caught: list, case: Case, changed: bool) -> list[str]:
    lines = err.splitlines() + [str(c.message) for c in caught]
    found = []
    if code != 2:
        found.append(f"exit {code}")
    if len(lines) != 1:
        found.append(f"{len(lines)} lines")
    if "Traceback" in err:
        found.append("a traceback")
    needles = (case.needle,) if isinstance(case.needle, str) else case.needle
    if not any(n in err for n in needles):
        found.append(f"does not name {needles[0][:60]!r}")
    if changed:
        found.append("files changed")
    return found


@pytest.fixture
def world(finished_run, tmp_path, unwritable_dir) -> World:
    import shutil

    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    image = tmp_path / "cat.jpg"
    image.write_bytes(sample_jpegs("test")["cat"][0])
    (tmp_path / "file.txt").write_text("not a folder, not a model\n")
    return World(tmp_path, run, tmp_path / "file.txt", image, unwritable_dir)


def _work_started(*args, **kwargs):
    raise AssertionError("training started: the bad part was not refused")


def _fuzz(world: World, capsys, monkeypatch, n: int) -> None:
    # A case let through would train for minutes: it fails at once instead, as a finding.
    monkeypatch.setattr("reslab.train.session.train_loop", _work_started)
    digest, failures = _digest(world.run), []
    for i, case in cases(SEED, n, world):
        before = _snapshot(world.tmp)
        capsys.readouterr()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                code = main(case.argv)
            except BaseException:  # noqa: BLE001 (what escapes main is a finding)
                code, escaped = None, traceback.format_exc()
            else:
                escaped = ""
        err = capsys.readouterr().err + escaped
        changed = _snapshot(world.tmp) != before
        found = _problems(code, err, caught, case, changed)
        if found:
            failures.append(f"case {i} {case.argv}: {', '.join(found)}; stderr: {err[:300]!r}")
    assert _digest(world.run) == digest, "the existing run directory changed"
    assert not failures, f"{len(failures)} of {n} cases failed:\n" + "\n".join(failures[:15])


def test_random_bad_input_is_one_line_exit_2_and_leaves_nothing(
    world, capsys, monkeypatch, reslab_data
):
    _fuzz(world, capsys, monkeypatch, FAST)


@pytest.mark.slow
def test_many_random_bad_inputs(world, capsys, monkeypatch, reslab_data):
    _fuzz(world, capsys, monkeypatch, SLOW)


def test_the_promise_holds_across_the_process_boundary(world, data_dir):
    """A few cases in real processes: what reaches the terminal there (warnings included)."""
    from tests.hostile import write_pickle_payload_checkpoint

    hostile = write_pickle_payload_checkpoint(world.tmp / "evil.pt", world.tmp / "pwned")
    picked = [c for _, c in cases(SEED, 30, world)][::15]
    picked.append(Case(["eval", str(hostile)], str(hostile)))
    picked.append(Case(["train", "--data-dir", str(world.file), *tiny_flags()], str(world.file)))
    for case in picked:
        before = _snapshot(world.tmp)
        r = run_cli(*case.argv, data_dir=data_dir)
        found = _problems(r.returncode, r.stderr, [], case, _snapshot(world.tmp) != before)
        assert not found, f"{case.argv}: {', '.join(found)}; stderr: {r.stderr!r}"
    assert not (world.tmp / "pwned").exists()
