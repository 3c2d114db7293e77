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


def binomial_noise(p_a: float, p_b: float, n: int) -> float:
    """Half-width of a 95% interval on the difference of two accuracies each measured on n
    images (normal approximation): a gap below it could be sampling noise of the split alone."""
    if n <= 0 or math.isnan(p_a) or math.isnan(p_b):
        return float("inf")
    return 1.96 * math.sqrt((p_a * (1 - p_a) + p_b * (1 - p_b)) / n)


def compare(
    a: tuple[float, float], b: tuple[float, float], n: int, seeds: int, floor: float = 0.01
) -> tuple[str, float, float]:
    """Verdict that mean a > mean b, from (mean, std) pairs measured on n images each, over
    `seeds` runs: (verdict, gap, noise). The noise is the larger of the spread over seeds,
    the split's sampling noise (shrinking with more seeds) and a floor."""
    gap = a[0] - b[0]
    noise = max(floor, a[1], b[1], binomial_noise(a[0], b[0], n) / math.sqrt(max(1, seeds)))
    if math.isnan(gap):
        return INCONCLUSIVE, gap, noise
    verdict = SUPPORTED if gap > noise else NOT_SUPPORTED if gap < -noise else INCONCLUSIVE
    return verdict, gap, noise


def val_size(results) -> int:
    """Images in the validation split of the experiment's runs."""
    n = results.runs[0].record.config.get("val_split", -1) if results.runs else -1
    return n if n and n > 0 else 5000
