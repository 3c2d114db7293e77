"""Reading run directories (finished, unfinished or crashed) back for reports."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from reslab.errors import UserError
from reslab.run.directory import RunDir

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@dataclass
class RunRecord:
    """One run directory: config.toml, metrics.jsonl rows, summary.json and the results of
    `reslab eval` (one per split and TTA)."""

    path: Path
    config: dict
    metrics: list[dict]  # one row per epoch, in file order
    summary: dict = field(default_factory=dict)  # empty for an unfinished run
    evaluations: list[dict] = field(default_factory=list)  # from `reslab eval`, eval.json first

    @property
    def name(self) -> str:
        return self.path.name or self.path.resolve().name  # "." names its folder

    @property
    def finished(self) -> bool:
        return bool(self.summary)

    def column(self, key: str) -> list[float | None]:
        return [row.get(key) for row in self.metrics]

    def last(self) -> dict:
        """The last epoch's metrics row, or {} when none was written."""
        return self.metrics[-1] if self.metrics else {}


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        warnings.warn(f"{path} is unreadable; ignoring it", stacklevel=3)
        return {}
    return value


def load_run(path: str | Path) -> RunRecord:
    """Read a run directory; a missing summary.json (run not finished) is fine."""
    run = RunDir(path)
    path, config_file = run.path, run.config
    if not config_file.is_file():
        why = "does not exist" if not path.exists() else "has no config.toml"
        raise UserError(
            f"{path} is not a run directory ({why}); pass a directory written by "
            "`reslab train --out`, holding config.toml and metrics.jsonl"
        )
    try:
        config = tomllib.loads(config_file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{config_file} is not valid TOML ({e}); fix or rewrite it") from None
    return RunRecord(
        path,
        config,
        run.read_metrics(),
        _read_json(run.summary),
        [ev for ev in map(_read_json, run.evaluations()) if ev],
    )
