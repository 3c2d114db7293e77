"""Reading finished (or unfinished) run directories back for reports."""

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
    path: Path
    config: dict
    metrics: list[dict]  # one row per epoch
    summary: dict = field(default_factory=dict)  # empty for an unfinished run

    @property
    def name(self) -> str:
        return self.path.name

    def column(self, key: str) -> list[float | None]:
        return [row.get(key) for row in self.metrics]


def _read_metrics(path: Path) -> list[dict]:
    rows = []
    if not path.is_file():
        return rows
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            warnings.warn(
                f"{path}: skipping unreadable line {i + 1} (a crash mid-write?)", stacklevel=3
            )
            break
    return rows


def load_run(path: str | Path) -> RunRecord:
    path = Path(path)
    config_file = path / "config.toml"
    if not config_file.is_file():
        raise UserError(
            f"{path} is not a run directory (no config.toml); pass directories that "
            "`reslab train --out` wrote"
        )
    try:
        config = tomllib.loads(config_file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{config_file} is not valid TOML: {e}") from None
    summary = {}
    if (path / "summary.json").is_file():
        try:
            summary = json.loads((path / "summary.json").read_text())
        except json.JSONDecodeError:
            warnings.warn(f"{path / 'summary.json'} is unreadable; ignoring it", stacklevel=2)
    return RunRecord(path, config, _read_metrics(path / "metrics.jsonl"), summary)
