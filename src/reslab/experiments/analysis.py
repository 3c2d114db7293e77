"""Numbers the verdicts are computed from (steps to a target, final values, mean and spread),
and the one rule that turns them into a verdict."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive at this budget"
UNTRAINED = "inconclusive: not trained long enough"

# When a run has reached the regime a claim about its final numbers is about: its training loss
# has stopped falling fast (less than FLAT_FALL, relative, per epoch over the last WINDOW epochs),
# or its learning-rate schedule has run down (the last lr at most ANNEALED of the largest).
WINDOW = 2
FLAT_FALL = 0.02
ANNEALED = 0.1


@dataclass(frozen=True)
class Progress:
    """How far one run got: the evidence a verdict on its final numbers rests on."""

    name: str
    steps: int
    train_error: float | None
    fall: float | None  # relative fall of the training loss per epoch over the last WINDOW
    annealed: bool
    seconds: float = 0.0  # training time, the sum of its epoch times
    epochs: int = 0

    @property
    def settled(self) -> bool:
        return self.annealed or (self.fall is not None and self.fall < FLAT_FALL)

    def evidence(self) -> str:
        error = "-" if self.train_error is None else f"{100 * self.train_error:.1f}%"
        fall = (
            f"still falling {100 * self.fall:.1f}% per epoch over the last {WINDOW} epochs"
            if self.fall is not None
            else f"fewer than {WINDOW + 1} epochs to tell"
        )
        return f"{self.name}: {self.steps} steps, training error {error}, training loss {fall}"


def progress(record, name: str = "") -> Progress:
    """Where a run's training stands, from its epoch rows (training loss and error, lr)."""
    rows = [r for r in record.metrics if r.get("train_loss") is not None]
    steps = rows[-1]["step"] if rows else 0
    error = 1 - rows[-1]["train_acc"] if rows and rows[-1].get("train_acc") is not None else None
    fall = None
    if len(rows) > WINDOW:
        before, last = rows[-1 - WINDOW]["train_loss"], rows[-1]["train_loss"]
        if before > 0 and last > 0:
            fall = (before / last) ** (1 / WINDOW) - 1
    lrs = [r["lr"] for r in rows if r.get("lr") is not None]
    annealed = bool(lrs) and lrs[-1] <= ANNEALED * max(lrs)
    seconds = sum(r.get("epoch_time_s") or 0.0 for r in rows)
    return Progress(name or str(record.path.name), steps, error, fall, annealed, seconds, len(rows))


def unless_untrained(decided: str, runs: Iterable[Progress]) -> tuple[str, str]:
    """A verdict on final numbers stands only when every run it compares has settled; else it
    is UNTRAINED, with the evidence of the run furthest from settling and what more training of
    the unsettled runs costs here (empty when it stands)."""
    open_runs = [p for p in runs if not p.settled]
    if not open_runs:
        return decided, ""
    worst = max(open_runs, key=lambda p: math.inf if p.fall is None else p.fall)
    return UNTRAINED, (
        f" Not trained long enough to decide: {len(open_runs)} run(s) still training fast; "
        f"{worst.evidence()} (a run counts as settled when its loss falls by less than "
        f"{100 * FLAT_FALL:.0f}% per epoch, or its learning rate has annealed to "
        f"{100 * ANNEALED:.0f}% of its peak).{_cost(open_runs)}"
    )


def _cost(runs: list[Progress]) -> str:
    """What more training of the unsettled runs costs on the machine that ran them."""
    timed = [p for p in runs if p.seconds > 0 and p.epochs > 0]
    if not timed:
        return ""
    hours = sum(p.seconds for p in timed) / 3600
    per_epoch = sum(p.seconds / p.epochs for p in timed) / 60
    return (
        f" Those runs took {hours:.2f} h of training here; each further epoch of all of them "
        f"costs about {per_epoch:.0f} min at the speed they ran."
    )


def verdict(
    a: float | None,
    b: float | None,
    *,
    lower_is_better: bool = False,
    margin: float = 0.0,
    refute_margin: float | None = None,
) -> str:
    """The verdict on a claim that `a` beats `b`: supported when a is better by more than
    `margin` (the noise), not supported when b is better by more than `refute_margin` (default:
    `margin`, a band symmetric about a tie), inconclusive in between or when either could not be
    measured (None or NaN). A value with a known worst case, such as a target never reached,
    is passed as that worst case (an infinity), not as None."""
    if a is None or b is None:
        return INCONCLUSIVE
    lead = b - a if lower_is_better else a - b  # NaN when both are the same infinity
    refute = margin if refute_margin is None else refute_margin
    if lead > margin:
        return SUPPORTED
    return NOT_SUPPORTED if lead < -refute else INCONCLUSIVE


def all_of(*verdicts: str) -> str:
    """The verdict on a claim made of parts: refuted by any one, supported only by all."""
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return UNTRAINED if UNTRAINED in verdicts else INCONCLUSIVE


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
    noise = max(floor, a[1], b[1], binomial_noise(a[0], b[0], n) / math.sqrt(max(1, seeds)))
    return verdict(a[0], b[0], margin=noise), a[0] - b[0], noise


def within_noise(
    a: tuple[float, float],
    b: tuple[float, float],
    n: int,
    seeds: int,
    floor: float = 0.01,
    hours: float = 0.0,
) -> str:
    """Why a gap inside the noise (see `compare`) stays undecided, and what, if anything, would
    decide it: more seeds shrink only the sampling term; the floor and the spread over seeds
    stay. `hours` is the training time of the runs compared, to price the seeds needed."""
    gap, spread = abs(a[0] - b[0]), max(a[1], b[1])
    sampling = binomial_noise(a[0], b[0], n)  # with one seed
    if math.isnan(gap) or math.isinf(sampling):
        return ""
    if gap <= floor:
        return (
            f" The gap is below the {100 * floor:g}-point floor under which no difference "
            "counts: at this length of training the two agree, more seeds cannot turn a gap "
            "this small into a verdict, and only longer runs could change the gap itself."
        )
    if gap <= spread:
        return (
            f" The spread over seeds ({100 * spread:.1f} points) exceeds the gap: a change of "
            "seed moves one result by more than the difference, and more seeds measure that "
            "spread better without shrinking it."
        )
    need = math.ceil((sampling / gap) ** 2)
    cost = f", about {hours * need / max(1, seeds):.1f} h of training here" if hours > 0 else ""
    return (
        f" The sampling noise of {n} images sets the noise; it falls below this gap with "
        f"{need} seeds{cost}."
    )


def judge(
    decided: str,
    a: tuple[float, float],
    b: tuple[float, float],
    n: int,
    seeds: int,
    compared: list,
    floor: float = 0.01,
) -> tuple[str, str]:
    """A `compare` verdict on final numbers, with why it stands or not: UNTRAINED while a run
    compared (RunResults) has not settled; for a gap inside the noise, what would decide it."""
    runs = [progress(r.record, r.spec.name) for r in compared]
    decided, why = unless_untrained(decided, runs)
    if decided == INCONCLUSIVE:
        why += within_noise(a, b, n, seeds, floor, sum(p.seconds for p in runs) / 3600)
    return decided, why


def val_size(results) -> int:
    """Images in the validation split of the experiment's runs."""
    n = results.runs[0].record.config.get("val_split", -1) if results.runs else -1
    return n if n and n > 0 else 5000
