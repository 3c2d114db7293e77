"""The method's statistics, checked against scipy and against cases computed by hand."""

import math
import random

import numpy as np
import pytest

from reslab.experiments.analysis import (
    AT_LEAST,
    BETTER,
    INCONCLUSIVE,
    MATCHES,
    NOT_SUPPORTED,
    SUPPORTED,
    Fit,
    Interval,
    Protocol,
    beta_inc,
    parts,
    sample_interval,
    seeds_to_decide,
    t_cdf,
    t_quantile,
    welch_interval,
    why_open,
)

stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")


@pytest.mark.parametrize("df", [1, 2, 3, 4.5, 7, 17, 30, 120, 1e5])
def test_t_quantiles_and_cdf_agree_with_scipy(df):
    for p in (0.0001, 0.025, 0.3, 0.5, 0.9, 0.975, 0.99, 0.99875, 0.9999):
        assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12)
    for t in (-40.0, -2.5, -0.1, 0.0, 0.7, 3.0, 25.0):
        assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), rel=1e-10, abs=1e-14)


def test_incomplete_beta_agrees_with_scipy():
    rng = random.Random(0)
    for _ in range(200):
        a, b, x = rng.uniform(0.05, 40), rng.uniform(0.05, 40), rng.random()
        assert beta_inc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-9, abs=1e-13)


def _paired(seeds: int, gap: float, rng: random.Random):
    """Two arms sharing each seed's effect (sd 1 point), plus noise of 0.3 points per run."""
    shared = [rng.gauss(0, 0.01) for _ in range(seeds)]
    a = [0.70 + gap + s + rng.gauss(0, 0.003) for s in shared]
    b = [0.70 + s + rng.gauss(0, 0.003) for s in shared]
    return a, b


@pytest.mark.parametrize("seeds", [2, 3, 5, 8])
def test_two_arms_give_the_paired_t_interval(seeds):
    a, b = _paired(seeds, 0.005, random.Random(seeds))
    fit = Fit({**{("a", k): v for k, v in enumerate(a)}, **{("b", k): v for k, v in enumerate(b)}})
    iv = fit.gap("a", "b")
    ref = stats.ttest_rel(a, b)
    low, high = ref.confidence_interval(0.95)
    assert iv.df == seeds - 1
    assert iv.estimate == pytest.approx(np.mean(np.subtract(a, b)), abs=1e-12)
    assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert iv.estimate / iv.se == pytest.approx(ref.statistic, rel=1e-8)


def test_many_arms_pool_the_two_way_residual():
    """arm + seed over a complete grid: the residual spread is the two-way one, computed here
    by hand, on (arms - 1)(seeds - 1) degrees of freedom; a gap's error is sigma sqrt(2/s)."""
    rng = random.Random(1)
    arms, seeds = 6, 3
    y = np.array([[0.6 + 0.01 * i + 0.01 * s + rng.gauss(0, 0.004) for s in range(seeds)]
                  for i in range(arms)])  # fmt: skip
    fit = Fit({(i, s): y[i, s] for i in range(arms) for s in range(seeds)})
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
    sigma = math.sqrt((resid**2).sum() / ((arms - 1) * (seeds - 1)))
    assert fit.df == (arms - 1) * (seeds - 1) and fit.sigma == pytest.approx(sigma, rel=1e-9)
    iv = fit.gap(2, 5)
    assert iv.estimate == pytest.approx(y[2].mean() - y[5].mean(), abs=1e-12)
    assert iv.se == pytest.approx(sigma * math.sqrt(2 / seeds), rel=1e-9)
    assert iv.half == pytest.approx(stats.t.ppf(0.975, fit.df) * iv.se, rel=1e-9)


def test_a_seed_only_one_arm_has_adds_nothing_to_the_gap():
    """An unpaired run is absorbed by its own seed's effect: the gap is the paired one."""
    cells = {("a", 0): 0.70, ("a", 1): 0.72, ("b", 0): 0.69, ("b", 1): 0.70, ("a", 2): 0.99}
    iv = Fit(cells).gap("a", "b")
    assert iv.estimate == pytest.approx(0.015) and iv.df == 1


def test_one_seed_gives_no_interval():
    iv = Fit({("a", 0): 0.7, ("b", 0): 0.6}).gap("a", "b")
    assert iv.df == 0 and iv.half == math.inf
    assert Protocol("m", BETTER, 0.01, "-").decide(iv) == INCONCLUSIVE
    assert "no interval" in iv.text()


def test_the_scratch_bn_case_of_four_paired_seeds():
    """lr 1.0 on the hour budget, seeds 0-3: reslab's BN below torch's on every seed by
    1.1, 1.6, 1.7 and 0.8 points: paired t = 6.1 on 3 df (p about 0.009)."""
    torch_bn, ours = (0.595, 0.598, 0.583, 0.574), (0.584, 0.582, 0.566, 0.566)
    cells = {("torch", k): v for k, v in enumerate(torch_bn)}
    cells |= {("ours", k): v for k, v in enumerate(ours)}
    iv = Fit(cells).gap("ours", "torch")
    assert iv.estimate == pytest.approx(-0.013) and iv.df == 3
    assert abs(iv.estimate) / iv.se == pytest.approx(6.13, abs=0.01)
    assert 2 * (1 - t_cdf(abs(iv.estimate) / iv.se, 3)) == pytest.approx(0.0087, abs=0.0005)
    # Not equivalent within 1 point (the interval reaches 2.0), nor shown beyond it (0.6).
    assert Protocol("m", MATCHES, 0.01, "-").decide(iv) == INCONCLUSIVE
    assert iv.high < 0  # but a difference is shown


def test_welch_and_one_sample_intervals_agree_with_scipy():
    rng = random.Random(2)
    a = [rng.gauss(1.0, 0.3) for _ in range(5)]
    b = [rng.gauss(0.4, 0.8) for _ in range(4)]
    low, high = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    iv = welch_interval(a, b)
    assert (iv.low, iv.high) == (pytest.approx(low, rel=1e-8), pytest.approx(high, rel=1e-8))
    low, high = stats.ttest_1samp(a, 0.0).confidence_interval(0.95)
    iv = sample_interval(a)
    assert (iv.low, iv.high) == (pytest.approx(low, rel=1e-8), pytest.approx(high, rel=1e-8))


def test_equivalence_is_two_one_sided_tests():
    """'matches' is supported exactly when both one-sided t tests against the margin reject at
    2.5% (the 95% interval inside plus or minus the margin)."""
    rng = random.Random(3)
    matches = Protocol("m", MATCHES, 0.01, "-")
    seen = set()
    for trial in range(300):
        seeds = rng.choice((2, 3, 4, 6))
        a, b = _paired(seeds, rng.uniform(-0.02, 0.02), rng)
        d = np.subtract(a, b)
        cells = {("a", k): v for k, v in enumerate(a)} | {("b", k): v for k, v in enumerate(b)}
        above = stats.ttest_1samp(d, -0.01, alternative="greater").pvalue
        below = stats.ttest_1samp(d, 0.01, alternative="less").pvalue
        decided = matches.decide(Fit(cells).gap("a", "b"))
        assert (decided == SUPPORTED) == (max(above, below) < 0.025), trial
        seen.add(decided)
    assert seen == {SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE}


@pytest.mark.parametrize(
    ("test", "low", "high", "expected"),
    [
        (BETTER, 0.001, 0.02, SUPPORTED),  # a lead shown
        (BETTER, -0.004, 0.008, NOT_SUPPORTED),  # no lead as large as the 1-point margin
        (BETTER, -0.004, 0.015, INCONCLUSIVE),
        (AT_LEAST, -0.008, 0.004, SUPPORTED),  # not worse by the margin
        (AT_LEAST, -0.03, -0.012, NOT_SUPPORTED),  # worse by more than the margin
        (AT_LEAST, -0.015, -0.001, INCONCLUSIVE),  # worse, but maybe by less than the margin
        (MATCHES, -0.008, 0.009, SUPPORTED),
        (MATCHES, 0.011, 0.02, NOT_SUPPORTED),
        (MATCHES, -0.002, 0.012, INCONCLUSIVE),  # more noise never makes "matches" easier
    ],
)
def test_each_test_reads_the_interval_against_the_margin(test, low, high, expected):
    se = (high - low) / 2 / stats.t.ppf(0.975, 10)
    iv = Interval((low + high) / 2, se, 10)
    assert (iv.low, iv.high) == (pytest.approx(low), pytest.approx(high))
    assert Protocol("m", test, 0.01, "-").decide(iv) == expected


def test_more_seeds_are_priced_from_the_interval():
    """A 0.6-point lead with a standard error of 0.3 on 1 df (2 seeds): the interval shrinks as
    1/sqrt(seeds) and its t quantile with the degrees of freedom; at n seeds it is
    0.6 - t(n - 1) 0.3 sqrt(2 / n), first above 0 at n = 4 (t = 3.18: 0.6 - 0.67 < 0) -> 5."""
    better = Protocol("m", BETTER, 0.01, "-")
    iv = Interval(0.006, 0.003, 1)
    assert better.decide(iv) == INCONCLUSIVE
    assert seeds_to_decide(better, iv, 2) == 5
    assert seeds_to_decide(better, Interval(0.0, 0.003, 1), 2) is not None  # rules out 1 point
    matches = Protocol("m", MATCHES, 0.01, "-")
    assert seeds_to_decide(matches, Interval(0.01, 0.003, 1), 2) is None  # on the bound
    # What the 3 more seeds of each arm cost, from what the 2 seeds took.
    assert "about 1.50 h more training" in why_open(better, iv, 2, hours=1.0)
    assert "about 9 min more training" in why_open(better, iv, 2, hours=0.1)
    assert "about 27 s more training" in why_open(better, iv, 2, hours=0.005)


def test_a_part_refutes_a_claim_only_on_the_interval_held_over_all_parts():
    """A gap of -2 points (standard error 0.4, 10 df) lies beyond a 1-point margin on its own
    95% interval (-2.89 to -1.11) but not on one held jointly over four parts (about -3.22 to
    -0.78): any of four parts could refute by accident, none may support without the others."""
    matches = Protocol("m", MATCHES, 0.01, "-")
    gap = Interval(-0.02, 0.004, 10)
    assert matches.decide(gap) == NOT_SUPPORTED
    inside = Interval(0.0, 0.002, 10)
    assert parts([(matches, gap)]) == [NOT_SUPPORTED]
    assert parts([(matches, gap)] + [(matches, inside)] * 3) == [INCONCLUSIVE] + [SUPPORTED] * 3
    joint = Interval(-0.02, 0.004, 10, family=4)
    assert joint.half == pytest.approx(stats.t.ppf(1 - 0.05 / 8, 10) * 0.004)
