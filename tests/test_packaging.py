"""The wheel that `pip install reslab` gets: its package data (the shipped sample, the pretrained
weights, py.typed) and the dependencies its METADATA declares.

The wheel is built once, offline (`pip wheel --no-deps --no-build-isolation`, with this venv's
setuptools), from a copy of pyproject.toml, README.md and src/ in a temporary folder, so that the
build's own files (build/, *.egg-info) never land in the work tree. About 2 s.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "reslab"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # No build isolation (offline): the build backend is this venv's setuptools (torch needs it).
    assert importlib.util.find_spec("setuptools"), "the wheel is built with this venv's setuptools"
    tree = tmp_path_factory.mktemp("tree")
    shutil.copy2(ROOT / "pyproject.toml", tree)
    shutil.copy2(ROOT / "README.md", tree)
    shutil.copytree(
        ROOT / "src",
        tree / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation"]
        + ["--disable-pip-version-check", "-q", "-w", str(out)],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout}\n{done.stderr}"
    (path,) = out.glob("reslab-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


def metadata(wheel: zipfile.ZipFile):
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(wheel.read(name).decode())


def requirements(wheel: zipfile.ZipFile) -> list[Requirement]:
    return [Requirement(line) for line in metadata(wheel).get_all("Requires-Dist", [])]


def test_wheel_ships_the_sample_and_py_typed(wheel):
    names = set(wheel.namelist())
    assert "reslab/data/sample/cifar10-sample.safetensors" in names
    assert "reslab/py.typed" in names
    assert "reslab/cli.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_ships_every_file_of_the_package(wheel):
    """Each file of src/reslab/ (the sample, models/weights/: the pretrained weights and their
    manifests, none yet maybe, models/figures.json, ...) is in the wheel, byte for byte: a data
    file missing from pyproject's [tool.setuptools.package-data] fails here."""
    names = set(wheel.namelist())
    files = sorted(
        p
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    assert any(p.suffix == ".safetensors" for p in files), files
    missing = []
    for path in files:
        name = "reslab/" + path.relative_to(PACKAGE).as_posix()
        if name not in names:
            missing.append(name)
        else:
            assert wheel.read(name) == path.read_bytes(), f"{name} differs from {path}"
    assert not missing, f"not in the wheel (pyproject's package-data): {missing}"


def test_wheel_declares_tomli_before_python_3_11(wheel):
    """reslab.run.config and reslab.report.runs fall back to tomli where tomllib is missing."""
    (tomli,) = [r for r in requirements(wheel) if r.name == "tomli"]
    assert tomli.marker is not None, "tomli must be declared for Python < 3.11 only"
    assert tomli.marker.evaluate({"python_version": "3.10"})
    assert not tomli.marker.evaluate({"python_version": "3.11"})
    assert tomli.specifier.contains("2.0.1")
    assert not tomli.specifier.contains("1.2.3")


def test_wheel_metadata_python_range_extras_and_script(wheel):
    meta = metadata(wheel)
    assert meta["Requires-Python"] == ">=3.10"
    version = re.search(r'^__version__ = "(.+)"$', (PACKAGE / "__init__.py").read_text(), re.M)
    assert version and meta["Version"] == version[1], "pyproject's version != reslab.__version__"
    extras = set(meta.get_all("Provides-Extra", []))
    assert {"export", "tensorboard", "dev"} <= extras
    (tensorboard,) = [r for r in requirements(wheel) if r.name == "tensorboard"]
    assert tensorboard.marker.evaluate({"extra": "tensorboard"})
    assert not tensorboard.marker.evaluate({"extra": ""})
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "reslab = reslab.cli:run" in wheel.read(entry_points).decode()
