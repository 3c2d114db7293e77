"""Numbers the verdicts are computed from: steps to a target, final values, mean and spread."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive at this budget"


def steps_to_target(record, target: float, key: str = "val_acc") -> int | None:
    """The first step at whose epoch end `key` reached `target`; None if it never did."""
    for row in record.metrics:
        if row.get(key) is not None and row[key] >= target:
            return row["step"]
    return None


def final(record, key: str) -> float | None:
    rows = [r for r in record.metrics if r.get(key) is not None]
    return rows[-1][key] if rows else None


def trained(result, chance: float) -> bool:
    """A run 'still trains' when it did not diverge and ends clearly above chance."""
    acc = final(result.record, "val_acc")
    return result.status == "done" and acc is not None and acc > 1.5 * chance


def mean_std(values: Iterable[float | None]) -> tuple[float, float]:
    v = [x for x in values if x is not None and not math.isnan(x)]
    if not v:
        return float("nan"), float("nan")
    return statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0


def fmt(mean: float, std: float, pct: bool = True, digits: int = 1) -> str:
    if math.isnan(mean):
        return "-"
    scale = 100 if pct else 1
    text = f"{scale * mean:.{digits}f}"
    return text + (f" ± {scale * std:.{digits}f}" if std else "") + ("%" if pct else "")
