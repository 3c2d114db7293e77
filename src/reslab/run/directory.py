"""The run directory: config, per-epoch metrics, checkpoints, final weights and summary, and
where reslab writes when it is not told where.

`RunDir` is the one owner of the layout: every other module asks it for a file's path, and
reads the metrics through it. `default_location` is the one owner of the default folders.
"""

from __future__ import annotations

import json
import os
import re
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
        self.evaluation = self.path / "eval.json"  # from `reslab eval`
        self.confusion = self.path / "confusion.png"  # from `reslab eval`
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
        run = cls(path)
        if run.path.exists() and not run.path.is_dir():
            raise UserError(f"--out {run.path} exists and is not a directory")
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
