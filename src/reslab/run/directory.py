"""The run directory: config, per-epoch metrics, checkpoints, final weights and summary, and
where reslab writes when it is not told where.

`RunDir` is the one owner of the layout: every other module asks it for a file's path, and
reads the metrics through it. `default_location` is the one owner of the default folders.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import warnings
from pathlib import Path

from reslab.errors import UserError
from reslab.io import atomic_write_json, atomic_write_text
from reslab.run.config import to_toml


def default_location(*parts: str) -> Path:
    """Where reslab writes what it was not told where to write: runs/PART/... under the current
    directory, each part made safe as a folder name."""
    return Path("runs", *(re.sub(r"[^A-Za-z0-9_.-]+", "_", p) or "_" for p in parts))


def pretrained_location(name: str) -> Path:
    """Where the outputs of shipped weights go when not told (they live inside the package):
    runs/pretrained/NAME/, for `reslab eval` and `reslab export` alike."""
    return default_location("pretrained", name)


FILE, FOLDER = "file", "folder"


def evaluation_protocol(split: str, tta: bool, augmented: bool = False, tta_shift: int = 0) -> str:
    """An evaluation's protocol as its file names spell it: SPLIT[-tta[-shiftN]][-augmented];
    test-tta is flips only (the name runs have had since before shifts), test-tta-shift2 flips
    and 2-pixel translations."""
    shift = f"-shift{tta_shift}" if tta and tta_shift else ""
    return f"{split}{'-tta' * tta}{shift}{'-augmented' * augmented}"


def check_output(
    path: str | Path, kind: str, what: str = "--out", *, new_folders: bool = False
) -> Path:
    """Fail early, in one line, where `path` cannot receive a `kind` output (FILE or FOLDER):
    the wrong kind of thing is there, its folder is missing, or the folder is not writable.
    A folder output may be created with its parents; a file's folder must exist unless
    `new_folders` (a default location, made as needed). Creates nothing; returns a Path."""
    if str(path).strip() == "":
        raise UserError(f"{what} is empty; give a {kind} to write to")
    try:
        return _check_output(Path(path), kind, what, new_folders)
    except OSError as e:  # a name too long, a loop of links: what the system says of it
        raise UserError(f"{what} {path}: {e.strerror}") from None


def _check_output(path: Path, kind: str, what: str, new_folders: bool) -> Path:
    if kind == FOLDER and path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder; give a folder to write into")
    if kind == FILE and path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name inside it")
    folder = path if kind == FOLDER else path.parent
    if kind == FILE and not new_folders and not folder.is_dir():
        raise UserError(f"{what} {path}: folder {folder} does not exist; create it first")
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        raise UserError(f"{what} {path}: {existing} is a file, not a folder")
    _check_writable(existing, what, path)
    return path


def _check_writable(folder: Path, what: str, path: Path) -> None:
    # Permission bits do not tell: root ignores them, a read-only mount does not show in them.
    # Creating (and removing) a file is the one sure test.
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".reslab-write-test-")
    except OSError as e:
        raise UserError(f"{what} {path}: cannot write into {folder} ({e.strerror})") from None
    os.close(fd)
    os.unlink(probe)


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.toml"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"
        self.last = self.checkpoints / "last.pt"
        self.best = self.checkpoints / "best.pt"
        self.weights = self.path / "model.safetensors"
        self.summary = self.path / "summary.json"
        self.evaluation = self.path / "eval.json"  # `reslab eval` of the test split, no TTA
        self.confusion = self.path / "confusion.png"  # its figure
        self.report = self.path / "report.md"  # from `reslab report` and `reslab train`
        self.curves = self.path / "curves.png"  # the report's figure
        self.report_html = self.path / "report.html"  # a report with its figures inlined
        self.status = self.path / "status.json"  # how an experiment's run ended
        self.probes = self.path / "probes.jsonl"  # what an experiment measured as the run trained

    @classmethod
    def default(cls, model: str, dataset: str) -> RunDir:
        """runs/MODEL-DATASET-TIME, where `reslab train` writes when not given --out."""
        data = dataset.split("/")[-1] or "data"
        return cls(default_location(f"{model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"))

    def evaluation_files(
        self, split: str, tta: bool, augmented: bool = False, tta_shift: int = 0
    ) -> tuple[Path, Path]:
        """(results, confusion figure) of `reslab eval` on `split`, with or without TTA (and
        its shift) and the training augmentation: one pair per protocol, so that no evaluation
        overwrites another. The test split as such keeps the names runs have always had
        (eval.json, confusion.png)."""
        protocol = evaluation_protocol(split, tta, augmented, tta_shift)
        if protocol == "test":
            return self.evaluation, self.confusion
        return self.path / f"eval.{protocol}.json", self.path / f"confusion.{protocol}.png"

    def evaluations(self) -> list[Path]:
        """Every evaluation's results file in the folder, eval.json first."""
        return sorted(self.path.glob("eval*.json"), key=lambda p: (p != self.evaluation, p.name))

    def model_file(self) -> Path | None:
        """What the run directory stands for as a model: its final weights, or its last
        checkpoint while unfinished; None before the first checkpoint."""
        for candidate in (self.weights, self.last):
            if candidate.is_file():
                return candidate
        return None

    @classmethod
    def check(cls, path: str | Path, force: bool) -> RunDir:
        """Fail early if `path` cannot become a new run directory; create nothing yet."""
        run = cls(check_output(path, FOLDER))
        if run.path.is_dir() and any(run.path.iterdir()) and not force:
            raise UserError(
                f"run directory {run.path} already exists; pass --resume {run.path} to "
                "continue it or --force to overwrite it"
            )
        return run

    @classmethod
    def create(cls, path: str | Path, force: bool) -> RunDir:
        run = cls.check(path, force)
        try:
            run.checkpoints.mkdir(parents=True, exist_ok=True)
            for stale in (run.metrics, run.summary, run.last, run.best, run.weights):
                stale.unlink(missing_ok=True)
        except OSError as e:
            raise UserError(f"cannot create run directory {run.path}: {e.strerror}") from None
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory: one that `reslab train` started (it has config.toml)."""
        run = cls(path)
        if not run.config.is_file():
            raise UserError(
                f"nothing to resume in {run.path}: no run was started there (no config.toml)"
            )
        return run

    def write_config(self, values: dict) -> None:
        atomic_write_text(self.config, to_toml(values))

    def append_metrics(self, row: dict) -> None:
        with self.metrics.open("a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict]:
        """The rows of metrics.jsonl, in file order. The engine appends one line per epoch, so
        a crash can cut the last one short: unreadable lines are skipped with a warning."""
        if not self.metrics.is_file():
            return []
        lines = self.metrics.read_text(errors="replace").splitlines()
        rows = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append(row)
                continue
            why = "cut short by a crash?" if i == len(lines) - 1 else "corrupt file?"
            warnings.warn(f"{self.metrics}: skipping unreadable line {i + 1} ({why})", stacklevel=2)
        return rows

    def truncate_metrics(self, epochs_done: int) -> None:
        """Keep the rows of epochs the checkpoint has seen: a crash may have left one more."""
        rows = [r for r in self.read_metrics() if r["epoch"] <= epochs_done]
        atomic_write_text(self.metrics, "".join(json.dumps(r) + "\n" for r in rows))

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.summary, summary)
