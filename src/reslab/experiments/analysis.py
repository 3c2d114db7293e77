"""The method every verdict follows: each claim's pre-registered protocol, the numbers it is
measured on, the paired confidence interval of a gap, and the rules that turn an interval into
a verdict.

The method, in short. A run's seed draws its validation split, its initialization and its data
order, so every arm of one seed shares them: results are paired by seed. One metric over the
cells of an experiment is fitted as arm + seed (least squares), and the residual spread, pooled
over all those cells, gives every gap between two arms a Student-t 95% confidence interval. The
interval is what more seeds shrink (as 1/sqrt(seeds)); the spread of single runs is what they
only measure better. A claim is decided by its protocol's test: "better" (the interval above
zero), "at least as good" (above minus the margin) or "matches" (inside plus or minus the
margin: two one-sided tests), the margin fixed in the protocol before the runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive at this budget"
UNTRAINED = "inconclusive: not trained long enough"

BETTER, AT_LEAST, MATCHES, LARGER = "better", "at least as good", "matches", "larger"
TESTS = {
    LARGER: "an exact comparison, no interval: supported when the claim's side is larger, not "
    "supported when it is smaller",
    BETTER: "supported when the 95% interval of the lead lies above 0; not supported when it "
    "lies below the margin (no lead that large)",
    AT_LEAST: "non-inferiority: supported when the 95% interval of the lead lies above minus "
    "the margin; not supported when it lies below it",
    MATCHES: "equivalence, two one-sided tests: supported when the 95% interval of the gap lies "
    "inside plus or minus the margin; not supported when it lies wholly outside",
}
CHANCE = 0.1  # chance accuracy on the experiments' ten-class data sets
REGISTERED = "2026-12-05"  # the date the protocols below were first fixed in the code
LEVEL = 0.95

# A run's training loss "still falls" (it is still learning) while it falls by FLAT_FALL or more,
# relative, per epoch over its last WINDOW epochs; a claim's curve is flat when its arm's mean
# moved by less than the claim's margin per epoch over the last WINDOW epochs.
WINDOW = 2
FLAT_FALL = 0.02
CURVES = {"val_acc": "validation accuracy", "train_acc": "training accuracy"}  # in words


# -- Student's t, without scipy at run time -------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz; Numerical
    Recipes, 3rd ed., Sec. 6.4)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def beta_inc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )  # fmt: skip
    if x < (a + 1) / (a + b + 2):  # where the fraction converges fast
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df degrees of freedom (df may be fractional)."""
    if math.isinf(df):
        return statistics.NormalDist().cdf(t)
    tail = 0.5 * beta_inc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (0 < p < 1), by bisection on t_cdf; +inf for df <= 0."""
    if df <= 0:
        return math.inf if p > 0.5 else -math.inf
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2 * high
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
        if high - low <= 1e-13 * high:
            break
    return (low + high) / 2


# -- intervals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A gap between two arms (or a contrast of several) and its uncertainty."""

    estimate: float  # in the metric's units
    se: float  # standard error of the estimate
    df: float  # degrees of freedom of the spread behind se; 0: not measured
    family: int = 1  # intervals held simultaneously (Bonferroni); 1 for a single gap

    @property
    def half(self) -> float:
        """Half-width of the 95% interval (held jointly over `family` intervals)."""
        if self.df <= 0 or math.isnan(self.se):
            return math.inf
        return t_quantile(1 - (1 - LEVEL) / (2 * self.family), self.df) * self.se

    @property
    def low(self) -> float:
        return self.estimate - self.half

    @property
    def high(self) -> float:
        return self.estimate + self.half

    def flip(self) -> Interval:
        return Interval(-self.estimate, self.se, self.df, self.family)

    def text(self, scale: float = 100, unit: str = " points") -> str:
        if math.isnan(self.estimate):
            return "not measured"
        gap = f"{scale * self.estimate:+.2f}{unit}"
        if self.df <= 0:
            return f"{gap} (no interval: one seed measures no spread)"
        joint = f", held jointly over {self.family}" if self.family > 1 else ""
        return (
            f"{gap}, 95% interval {scale * self.low:+.2f} to {scale * self.high:+.2f} "
            f"(t, {self.df:.3g} df{joint})"
        )


def sample_interval(values: Iterable[float]) -> Interval:
    """The mean of independent values and its t interval."""
    v = [x for x in values if x is not None and not math.isnan(x)]
    if len(v) < 2:
        return Interval(statistics.fmean(v) if v else math.nan, math.nan, 0)
    return Interval(statistics.fmean(v), statistics.stdev(v) / math.sqrt(len(v)), len(v) - 1)


def welch_interval(a: Iterable[float], b: Iterable[float]) -> Interval:
    """Mean of a minus mean of b, unpaired, with Welch-Satterthwaite degrees of freedom."""
    ia, ib = sample_interval(a), sample_interval(b)
    if ia.df <= 0 or ib.df <= 0:
        return Interval(ia.estimate - ib.estimate, math.nan, 0)
    va, vb = ia.se**2, ib.se**2
    df = (va + vb) ** 2 / (va**2 / ia.df + vb**2 / ib.df) if va + vb > 0 else math.inf
    return Interval(ia.estimate - ib.estimate, math.sqrt(va + vb), df)


class Fit:
    """One metric fitted as arm + seed over cells {(arm, seed): value} (least squares; missing
    cells allowed). Its residual spread, pooled over every cell, is the noise of one run once
    the seed's shared part is taken out: (arms - 1)(seeds - 1) degrees of freedom when every
    arm has every seed."""

    def __init__(self, cells: Mapping[tuple, float | None], noise: Fit | None = None):
        """`noise`: a fit over the cells whose spread stands for all (say, the runs that
        trained: runs stuck at chance have none), else this one's own."""
        cells = {k: v for k, v in cells.items() if v is not None and not math.isnan(v)}
        self.arms = list(dict.fromkeys(arm for arm, _ in cells))
        seeds = list(dict.fromkeys(seed for _, seed in cells))
        self.pooled = {a: sum(1 for arm, _ in cells if arm == a) for a in self.arms}  # runs
        x = np.zeros((len(cells), len(self.arms) + max(0, len(seeds) - 1)))
        for row, (arm, seed) in enumerate(cells):
            x[row, self.arms.index(arm)] = 1.0
            if seeds.index(seed) > 0:  # the first seed is the baseline
                x[row, len(self.arms) + seeds.index(seed) - 1] = 1.0
        y = np.array(list(cells.values()), dtype=np.float64)
        self._coef = np.linalg.lstsq(x, y, rcond=None)[0] if len(y) else np.zeros(0)
        residual = y - x @ self._coef if len(y) else y
        self.df = len(y) - (np.linalg.matrix_rank(x) if len(y) else 0)
        self.sigma = math.sqrt(float(residual @ residual) / self.df) if self.df > 0 else math.nan
        self._unscaled = np.linalg.pinv(x.T @ x) if len(y) else x
        if noise is not None:
            self.df, self.sigma, self.pooled = noise.df, noise.sigma, noise.pooled

    def contrast(self, weights: Mapping, family: int = 1) -> Interval:
        """sum(weight * arm effect), weights summing to 0 (seed effects then cancel)."""
        if any(arm not in self.arms for arm in weights):
            return Interval(math.nan, math.nan, 0, family)
        c = np.zeros(len(self._coef))
        for arm, w in weights.items():
            c[self.arms.index(arm)] = w
        se = self.sigma * math.sqrt(float(c @ self._unscaled @ c)) if self.df > 0 else math.nan
        return Interval(float(c @ self._coef), se, self.df, family)

    def gap(self, a, b, family: int = 1) -> Interval:
        """Arm a minus arm b, paired by seed."""
        return self.contrast({a: 1.0, b: -1.0}, family)

    def spread(self) -> str:
        if self.df <= 0:
            return "the seed-to-seed spread is not measured (one seed)"
        return (
            f"residual spread of one run {100 * self.sigma:.2f} points once each seed's shared "
            f"part is taken out, pooled over {sum(self.pooled.values())} runs in "
            f"{len(self.pooled)} cells ({self.df} df)"
        )


def fewest_seeds(*arms: list) -> int:
    """The seeds a gap between these arms rests on: the fewest any of them has (an arm that
    got more seeds than another does not make their gap's interval narrower by itself)."""
    return min((len(a) for a in arms), default=0)


def run_names(*groups: Iterable) -> list[str]:
    """The grid names of the runs (RunResults) in `groups`, each once, in order."""
    return list(dict.fromkeys(r.spec.name for group in groups for r in group))


def cells(arms: Mapping[str, list], metric: Callable) -> dict[tuple, float | None]:
    """{(arm, seed): metric(run)} for runs (RunResults) grouped by arm."""
    return {(arm, r.seed): metric(r) for arm, runs in arms.items() for r in runs}


# -- protocols and verdicts -----------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """A claim's pre-registration: fixed in the code before the runs it decides, printed in the
    report. A rule changed after results were seen keeps its date in `changes`."""

    metric: str  # what is measured, on which split, in which units
    test: str  # BETTER, AT_LEAST or MATCHES
    margin: float  # the smallest difference that counts (0.01: 1 point of accuracy)
    lrs: str  # how the learning rate of each arm is set
    seeds: int = 2  # the fewest seeds that give an interval
    registered: str = REGISTERED
    changes: tuple[str, ...] = ()  # "DATE: what changed, after which results"
    paired: bool = True  # results paired by seed (False: independent draws, Welch)
    margin_words: str = ""  # the margin in words, where it is not in points of accuracy

    def decide(self, iv: Interval) -> str:
        """The verdict on the lead `iv` (claim's side minus the other, positive = as claimed)."""
        if math.isnan(iv.estimate):
            return INCONCLUSIVE
        m = self.margin
        if self.test == BETTER:
            return _side(iv.low > 0, iv.high < m)
        if self.test == AT_LEAST:
            return _side(iv.low > -m, iv.high < -m)
        return _side(-m < iv.low and iv.high < m, iv.low > m or iv.high < -m)

    def text(self) -> str:
        changed = "".join(f" Changed {c}." for c in self.changes)
        points = 100 * self.margin
        margin = "" if self.test == LARGER else f"margin {points:g} point{'s' * (points != 1)}; "
        margin = f"margin {self.margin_words}; " if self.margin_words else margin
        return (
            f"Protocol (registered {self.registered}): {self.metric}; test: {self.test}, "
            f"{TESTS[self.test]}; {margin}learning rates: {self.lrs}; at least {self.seeds} "
            f"seeds{', paired by seed' if self.paired else ''}.{changed}"
        )


def _side(supported: bool, refuted: bool) -> str:
    return SUPPORTED if supported else NOT_SUPPORTED if refuted else INCONCLUSIVE


def seeds_to_decide(protocol: Protocol, iv: Interval, seeds: int, limit: int = 32) -> int | None:
    """The fewest seeds per arm at which the interval, shrinking as 1/sqrt(seeds) around the
    same gap, would decide the claim; None when no number up to `limit` would."""
    if seeds < 2 or iv.df <= 0 or math.isnan(iv.se):
        return None
    for n in range(seeds + 1, limit + 1):
        df = iv.df * (n - 1) / (seeds - 1)  # residual df grow with the seeds
        projected = Interval(iv.estimate, iv.se * math.sqrt(seeds / n), df, iv.family)
        if protocol.decide(projected) != INCONCLUSIVE:
            return n
    return None


def why_open(protocol: Protocol, iv: Interval, seeds: int, hours: float = 0.0) -> str:
    """What would decide an inconclusive verdict: more seeds (how many, at what cost)."""
    if seeds < 2 or iv.df <= 0:
        return (
            " One seed measures no spread, so no gap has an interval: run with --seeds 2 or more."
        )
    limit = 32
    need = seeds_to_decide(protocol, iv, seeds, limit)
    if need is None:
        return (
            f" Even {limit} seeds per arm would not decide it if the gap and the spread stay as "
            "measured; longer runs might move the gap itself."
        )
    more = _duration(hours * 3600 * (need - seeds) / seeds)
    cost = f", about {more} more training here" if hours else ""
    return (
        f" If the gap and the spread stay as measured, {need} seeds per arm would decide it "
        f"(the interval shrinks as 1/sqrt(seeds){cost})."
    )


def all_of(*verdicts: str) -> str:
    """The verdict on a claim made of parts: refuted by any one, supported only by all."""
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return UNTRAINED if UNTRAINED in verdicts else INCONCLUSIVE


def parts(judged: list[tuple[Protocol, Interval]]) -> list[str]:
    """The verdicts on the k parts of a claim that needs every part (for `all_of`). Each part
    is supported on its own 95% interval: a claim supported only when all are is an
    intersection-union test, which needs no widening (Berger 1982). Any one part refutes the
    claim, so a refutation is read on the interval held jointly over the k parts (Bonferroni):
    else k chances to refute by accident."""
    k = len(judged)
    out = []
    for protocol, iv in judged:
        decided = protocol.decide(iv)
        if decided == NOT_SUPPORTED and k > 1:
            decided = protocol.decide(Interval(iv.estimate, iv.se, iv.df, iv.family * k))
        out.append(decided)
    return out


def verdict(
    a: float | None,
    b: float | None,
    *,
    lower_is_better: bool = False,
    margin: float = 0.0,
    refute_margin: float | None = None,
) -> str:
    """The verdict that `a` beats `b` where both are exact (a count, a threshold crossed), not
    noisy means: supported when a is better by more than `margin`, not supported when b is
    better by more than `refute_margin` (default `margin`), inconclusive in between or when
    either is missing (None or NaN). A known worst case (a target never reached) is passed as
    that worst case (an infinity)."""
    if a is None or b is None:
        return INCONCLUSIVE
    lead = b - a if lower_is_better else a - b  # NaN when both are the same infinity
    refute = margin if refute_margin is None else refute_margin
    if lead > margin:
        return SUPPORTED
    return NOT_SUPPORTED if lead < -refute else INCONCLUSIVE


# -- how far runs got ----------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How far one run got: its training loss's fall and what it cost."""

    name: str
    steps: int
    train_error: float | None
    fall: float | None  # relative fall of the training loss per epoch over the last WINDOW
    seconds: float = 0.0  # training time, the sum of its epoch times
    epochs: int = 0

    @property
    def learning(self) -> bool:
        """Still learning: its loss falls by FLAT_FALL or more per epoch (or too few epochs)."""
        return self.fall is None or self.fall >= FLAT_FALL


def progress(record, name: str = "") -> Progress:
    """Where a run's training stands, from its epoch rows (training loss and error)."""
    rows = [r for r in record.metrics if r.get("train_loss") is not None]
    steps = rows[-1]["step"] if rows else 0
    error = 1 - rows[-1]["train_acc"] if rows and rows[-1].get("train_acc") is not None else None
    fall = None
    if len(rows) > WINDOW:
        before, last = rows[-1 - WINDOW]["train_loss"], rows[-1]["train_loss"]
        if before > 0 and last > 0:
            fall = (before / last) ** (1 / WINDOW) - 1
    seconds = sum(r.get("epoch_time_s") or 0.0 for r in rows)
    return Progress(name or str(record.path.name), steps, error, fall, seconds, len(rows))


def drift(runs: list, key: str) -> float | None:
    """How far the mean over runs of `key` moved per epoch over the last WINDOW epochs (the
    end of the arm's mean curve); None with fewer than WINDOW + 1 epochs in some run."""
    tails = []
    for r in runs:
        values = [m[key] for m in r.record.metrics if m.get(key) is not None]
        if len(values) <= WINDOW:
            return None
        tails.append(values[-1 - WINDOW :])
    if not tails:
        return None
    mean = [statistics.fmean(col) for col in zip(*tails, strict=True)]
    return (mean[-1] - mean[0]) / WINDOW


def settle(decided: str, arms: Mapping[str, list], key: str, margin: float) -> tuple[str, str]:
    """A verdict on final numbers stands only when the curve it is read from is flat: each
    arm's mean `key` moved by less than the margin per epoch over its last WINDOW epochs (a
    schedule that annealed is not enough: a run can end still improving fast). Else UNTRAINED,
    naming the arm furthest from flat and what another epoch of the open arms costs here."""
    moving = {a: drift(runs, key) for a, runs in arms.items() if runs}
    open_arms = {a: d for a, d in moving.items() if d is None or abs(d) >= margin}
    if not open_arms:
        return decided, ""
    worst = max(open_arms, key=lambda a: math.inf if open_arms[a] is None else abs(open_arms[a]))
    d = open_arms[worst]
    how = (
        f"fewer than {WINDOW + 1} epochs to tell"
        if d is None
        else f"its mean {CURVES.get(key, key)} still moved {100 * d:+.1f} points per epoch over "
        f"the last {WINDOW}"
    )
    runs = [progress(r.record, r.spec.name) for a in open_arms for r in arms[a]]
    return UNTRAINED, (
        f" Not settled: {len(open_arms)} of {len(arms)} arms still move by the margin "
        f"({100 * margin:g} point) or more per epoch; {worst}: {how}.{_cost(runs)}"
    )


def _cost(runs: list[Progress]) -> str:
    """What more training of the unsettled runs costs on the machine that ran them."""
    timed = [p for p in runs if p.seconds > 0 and p.epochs > 0]
    if not timed:
        return ""
    spent = sum(p.seconds for p in timed)
    per_epoch = sum(p.seconds / p.epochs for p in timed)
    return (
        f" Those runs took {_duration(spent)} of training here; each further epoch of all of "
        f"them costs about {_duration(per_epoch)} at the speed they ran."
    )


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def hours(runs: Iterable) -> float:
    """Training time of runs (RunResults), in hours."""
    return sum(progress(r.record).seconds for r in runs) / 3600


# -- numbers read from runs -----------------------------------------------------------------


def steps_to_target(record, target: float, key: str = "val_acc") -> int | None:
    """The first step at whose epoch end `key` reached `target`; None if it never did."""
    for row in record.metrics:
        if row.get(key) is not None and row[key] >= target:
            return row["step"]
    return None


def final(record, key: str) -> float | None:
    rows = [r for r in record.metrics if r.get(key) is not None]
    return rows[-1][key] if rows else None


def area(result, key: str, floor: float) -> float:
    """The area under a run's curve of `key`, per epoch: its mean over the run's planned epochs,
    the epochs after a divergence counted at `floor` (chance: a diverged run learns no more).
    A measure of speed on the grid the metrics have (one evaluation per epoch)."""
    values = [m[key] for m in result.record.metrics if m.get(key) is not None]
    planned = max(len(values), int(result.record.config.get("epochs") or 0))
    if not planned:
        return math.nan
    return (sum(values) + floor * (planned - len(values))) / planned


def accuracy_on_test(result) -> float | None:
    """The run's test accuracy, read once at its end (None for a run that did not finish)."""
    return result.record.summary.get("test_acc") if result.status == "done" else None


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


def val_size(results) -> int:
    """Images in the validation split of the experiment's runs."""
    n = results.runs[0].record.config.get("val_split", -1) if results.runs else -1
    return n if n and n > 0 else 5000
