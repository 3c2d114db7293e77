"""Reading run directories (finished, unfinished or crashed) back for reports."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from reslab.errors import UserError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@dataclass
class RunRecord:
    """One run directory: config.toml, metrics.jsonl rows, summary.json and eval.json."""

    path: Path
    config: dict
    metrics: list[dict]  # one row per epoch, in file order
    summary: dict = field(default_factory=dict)  # empty for an unfinished run
    evaluation: dict = field(default_factory=dict)  # eval.json from `reslab eval`, if any

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


def _read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = path.read_text(errors="replace").splitlines()
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
        # The training engine appends one line per epoch, so a crash can cut the last one short.
        why = "cut short by a crash?" if i == len(lines) - 1 else "corrupt file?"
        warnings.warn(f"{path}: skipping unreadable line {i + 1} ({why})", stacklevel=3)
    return rows


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
    path = Path(path)
    config_file = path / "config.toml"
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
        _read_metrics(path / "metrics.jsonl"),
        _read_json(path / "summary.json"),
        _read_json(path / "eval.json"),
    )
