"""What the test folders share: the CLI run as a user runs it, the one tiny training config, the
shipped sample (decoded once per session, and its original JPEG files), and the `gpu` marker.

Plain helpers are imported (`from tests.conftest import run_cli, tiny_flags`); what holds state
for the session comes as fixtures (`data_dir`, `reslab_data`, `tiny_config`).
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# The tiny training run fast tests start from; keys are TrainConfig fields. A test overrides only
# what it is about, so what it checks is visible at the call.
TINY_TRAIN = {
    "dataset": "cifar10-sample",
    # The boring model: one conv layer and BN, about 1/12 of resnet20's work a step. A test about
    # residual networks names its own.
    "model": "small_cnn",
    "epochs": 1,
    "max_steps": 3,  # optimizer steps; with epochs set too, the first limit reached ends the run
    "batch_size": 32,
    "val_split": 100,  # images of the sample's 4,000 held out for validation
    "threads": 2,  # the CI machine has 2 cores
}


def tiny_settings(**overrides: object) -> dict[str, object]:
    """TINY_TRAIN with overrides. An override of None drops the key: `max_steps=None` leaves the
    length to `epochs` alone (build_config clears the other of the two)."""
    merged = {**TINY_TRAIN, **overrides}
    return {key: value for key, value in merged.items() if value is not None}


def tiny_flags(**overrides: object) -> list[str]:
    """tiny_settings(**overrides) as `reslab train` flags: `batch_size=64` -> `--batch-size 64`,
    `flip=False` -> `--no-flip`."""
    from reslab.run.config import as_flags

    return as_flags(tiny_settings(**overrides))


def cli_env(data_dir: Path | str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment, with RESLAB_DATA=data_dir and the extra variables."""
    env = {**os.environ, **extra}
    if data_dir is not None:
        env["RESLAB_DATA"] = str(data_dir)
    return env


def run_python(
    *argv: object,
    data_dir: Path | str | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 300,
    **kwargs,
) -> subprocess.CompletedProcess[str]:
    """`python ARGV...` in a child process, waited for, stdout and stderr captured as text;
    RESLAB_DATA=data_dir and extra_env on top of this process's environment."""
    return subprocess.run(
        [sys.executable, *map(str, argv)],
        capture_output=True,
        text=True,
        env=cli_env(data_dir, **(extra_env or {})),
        timeout=timeout,
        **kwargs,
    )


def run_cli(*args: object, **kwargs) -> subprocess.CompletedProcess[str]:
    """`python -m reslab ARGS...` as a user runs it (keywords as run_python)."""
    return run_python("-m", "reslab", *args, **kwargs)


def start_cli(
    *args: object,
    data_dir: Path | str | None = None,
    extra_env: dict[str, str] | None = None,
    **kwargs,
) -> subprocess.Popen[str]:
    """`python -m reslab ARGS...` started and not waited for, to be signalled; stdout and stderr
    are text pipes unless the keywords say otherwise."""
    kwargs = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.Popen(
        [sys.executable, "-m", "reslab", *map(str, args)],
        text=True,
        env=cli_env(data_dir, **(extra_env or {})),
        **kwargs,
    )


@pytest.fixture(scope="session", autouse=True)
def _no_user_cache(tmp_path_factory):
    """No test writes to the user's data cache (~/.cache/reslab): $RESLAB_DATA points into the
    session's temporary folder, for this process and the CLI's child processes, wherever a test
    does not set its own."""
    patch = pytest.MonkeyPatch()
    patch.setenv("RESLAB_DATA", str(tmp_path_factory.mktemp("reslab-data")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _process_state():
    """What the CLI's `main` sets for its whole process (the `reslab` logger's handler, torch's
    threads), put back after every test that called it in this process."""
    import torch

    logger = logging.getLogger("reslab")
    threads, handlers = torch.get_num_threads(), list(logger.handlers)
    propagate, level = logger.propagate, logger.level
    yield
    torch.set_num_threads(threads)
    logger.handlers[:], logger.propagate = handlers, propagate
    logger.setLevel(level)


@pytest.fixture
def cli(data_dir, monkeypatch, capsys):
    """`reslab ARGS...` in this process, through the same `main` the console script calls:
    (*args, data_dir=...) -> a CompletedProcess with the exit code and what was printed. For
    everything but what needs a process of its own (signals, torchrun, the console script)."""
    from reslab.cli import main

    def run(*args: object, data_dir: Path | str | None = data_dir):
        if data_dir is not None:
            monkeypatch.setenv("RESLAB_DATA", str(data_dir))
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


@functools.cache
def sample_jpegs(split: str = "train") -> dict[str, list[bytes]]:
    """Class name -> the shipped sample's original JPEG files of that class."""
    from safetensors.torch import load_file

    from reslab.data.shipped import SAMPLE_FILE, unpack_jpegs

    t = load_file(str(SAMPLE_FILE))
    blobs = unpack_jpegs(t[f"{split}_jpeg"], t[f"{split}_offsets"])
    by_class: dict[str, list[bytes]] = {name: [] for name in CLASSES}
    for label, data in zip(t[f"{split}_labels"].tolist(), blobs, strict=True):
        by_class[CLASSES[label]].append(data)
    return by_class


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A data directory (RESLAB_DATA) whose cache already holds the decoded shipped sample: the
    sample is decoded once per session (about 4 s here), not once per module or test. Tests must
    not damage its cache; those that do use a data directory of their own."""
    from reslab.data import load_dataset

    path = tmp_path_factory.mktemp("data")
    load_dataset("cifar10-sample", path)
    return path


@pytest.fixture
def reslab_data(data_dir, monkeypatch) -> Path:
    """$RESLAB_DATA set to the shared data_dir for one test, for in-process calls that read it."""
    monkeypatch.setenv("RESLAB_DATA", str(data_dir))
    return data_dir


@pytest.fixture(scope="session")
def tiny_config(data_dir):
    """(**overrides) -> the TrainConfig of tiny_settings(**overrides), reading data_dir."""
    from reslab.train import build_config

    def make(**overrides):
        return build_config({"data_dir": str(data_dir), **tiny_settings(**overrides)})

    return make


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_config) -> Path:
    """A finished tiny run directory, trained once per session. Tests that write into a run
    use `run_copy`; this one stays as trained."""
    from reslab.train import fit

    path = tmp_path_factory.mktemp("finished") / "run"
    fit(tiny_config(max_steps=2), path, quiet=True)
    return path


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A copy of `finished_run` of this test's own, to write into."""
    import shutil

    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def cannot_write(folder: Path) -> bool:
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return False
    except OSError:
        return True


@pytest.fixture
def unwritable_dir(tmp_path) -> Path:
    """A folder this process cannot write into: a read-only folder of its own, or (as root,
    whom permission bits do not stop) /sys, which the kernel keeps unwritable."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if cannot_write(folder):
        yield folder
    elif Path("/sys").is_dir() and cannot_write(Path("/sys")):
        yield Path("/sys")
    else:
        pytest.skip("no folder here that this process cannot write into")
    folder.chmod(0o755)


def pytest_collection_modifyitems(config, items):
    """One marker for hardware: a `gpu` test runs where CUDA is, and is skipped with its reason
    where it is not (rather than deselected, so a CPU run still lists what it left out)."""
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu: needs a CUDA device, torch.cuda.is_available() is False")
    for item in gpu:
        item.add_marker(skip)
