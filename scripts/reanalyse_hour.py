"""Re-analyse the committed `hour` reports under the experiments' current method, from their
tables alone.

The run directories behind the first hour runs' reports (docs/experiments/NAME-hour-DATE/report.md)
are not kept; each report keeps its Runs table (every run's final validation accuracy, by seed) and
per-arm tables (mean ± std over the seeds). This script parses them, fits arm + seed to what is
given per run, judges each claim by its protocol in the experiment's module, and writes, for each
experiment, what the tables decide and what needs the runs again between `<!-- reanalysis: hour -->`
and `<!-- end reanalysis -->` in docs/experiments/NAME.md. `--check` exits 1 when a page is stale
(the test suite runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from reslab.experiments import batchnorm, degradation, optimizers, placement
from reslab.experiments.analysis import (
    AT_LEAST,
    BETTER,
    CHANCE,
    INCONCLUSIVE,
    LARGER,
    SUPPORTED,
    UNTRAINED,
    Fit,
    Protocol,
    all_of,
    parts,
    welch_interval,
)
from reslab.report.markdown import markdown_table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "experiments"
DATE = "2026-12-05"
NEEDS_CURVES = "needs the runs again: the tables keep no curves"
NEEDS_TEST = "needs the runs again: the tables keep no test accuracy per run"


# -- reading the reports --------------------------------------------------------------------


def sections(text: str) -> dict[str, str]:
    """'## title' -> the text under it."""
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    return {p.split("\n", 1)[0].strip(): p.split("\n", 1)[1] for p in parts}


def verdict_of(section: str) -> str:
    return re.search(r"\*\*Verdict: (.*?)\.\*\*", section).group(1)


def table(section: str) -> list[dict[str, str]]:
    """The first markdown table of a section, as rows keyed by header."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return [dict(zip(split[0], row, strict=True)) for row in split[2:]]


def pct(text: str) -> float:
    return float(text.rstrip("%").replace(",", "")) / 100


def mean_std(text: str) -> tuple[float, float]:
    """'66.7 ± 0.5%' -> (0.667, 0.005); '10.0%' -> (0.1, 0.0)."""
    mean, _, std = text.rstrip("%").partition(" ± ")
    return float(mean) / 100, float(std or 0) / 100


def runs(report: dict[str, str], rename: dict | None = None) -> dict[tuple, float]:
    """{(arm, seed): final validation accuracy} from the Runs table ('NAME-sK' rows)."""
    cells = {}
    for row in table(report["Runs"]):
        arm, seed = re.fullmatch(r"(.+)-s(\d+)", row["run"]).groups()
        cells[((rename or {}).get(arm, arm), int(seed))] = pct(row["final val acc"])
    return cells


def hours(report: dict[str, str]) -> float:
    return sum(float(r["training time (s)"].replace(",", "")) for r in table(report["Runs"])) / 3600


# The first hour runs, each report in a folder dated by its run (re-runs write NAME-hour).
FIRST_RUN = {
    "batchnorm": "2026-12-01",
    "degradation": "2026-11-30",
    "optimizers": "2026-12-01",
    "placement": "2026-12-01",
}


def read(name: str) -> dict[str, str]:
    return sections((DOCS / f"{name}-hour-{FIRST_RUN[name]}" / "report.md").read_text())


# -- verdicts -------------------------------------------------------------------------------


def row(claim: str, before: str, after: str, interval: str, protocol: Protocol, note: str):
    test = f"{protocol.test}, margin {100 * protocol.margin:g} point"
    test = "larger (exact, no interval)" if protocol.test == LARGER else test
    return [claim, before, after, interval, test, note]


def _trained(cells: dict[tuple, float]) -> dict[tuple, float]:
    """The cells of arms whose every seed ends above 1.5x chance."""
    low = {arm for (arm, _), v in cells.items() if v <= 1.5 * CHANCE}
    return {k: v for k, v in cells.items() if k[0] not in low}


def lr1_seeds(page: str) -> dict[tuple, float]:
    """Seeds 2 and 3 of torch's and reslab's BN at lr 1.0, run after the report and recorded
    in its page ('A closer look at lr 1.0')."""
    found = re.search(
        r"torch's BN ([\d.]+)% and ([\d.]+)%, reslab's ([\d.]+)% and ([\d.]+)%", page
    ).groups()
    values = [float(v) / 100 for v in found]
    return {
        ("batchnorm-lr1", 2): values[0],
        ("batchnorm-lr1", 3): values[1],
        ("batchnorm-scratch-lr1", 2): values[2],
        ("batchnorm-scratch-lr1", 3): values[3],
    }


def _arm_mean(cells: dict[tuple, float], arm: str) -> float:
    values = [v for (a, _), v in cells.items() if a == arm]
    return sum(values) / len(values) if values else float("nan")


def _largest(cells: dict[tuple, float], norm: str) -> float | None:
    """The largest rate at which every seed of the norm ends above 1.5x chance."""
    ok = [lr for lr in batchnorm.LRS
          if (v := [x for (a, _), x in cells.items() if a == f"{norm}-lr{lr:g}"])
          and all(x > 1.5 * CHANCE for x in v)]  # fmt: skip
    return max(ok, default=None)


def _bn_placement(report, cells, fit) -> list:
    after = batchnorm.AFTER_RELU
    best = {n: max(batchnorm.LRS, key=lambda lr, n=n: _arm_mean(cells, f"{n}-lr{lr:g}"))
            for n in ("batchnorm", after)}  # fmt: skip
    chosen = fit.gap(f"batchnorm-lr{best['batchnorm']:g}", f"{after}-lr{best[after]:g}")
    at_1 = fit.gap("batchnorm-lr1", f"{after}-lr1")
    title = "BN before the ReLU trains better than after it"
    return row(
        title,
        verdict_of(report[title]),
        NEEDS_TEST,
        f"on validation, the set the rate was chosen on (lr {best['batchnorm']:g} and "
        f"{best[after]:g}): {chosen.text()}; at lr 1: {at_1.text()}",
        batchnorm.PLACED,
        "chosen on validation, judged on test: the test reads are per arm only",
    )


def _scratch(report, cells, fit) -> list:
    judged = [(lr, fit.gap(f"batchnorm-scratch-lr{lr:g}", f"batchnorm-lr{lr:g}"))
              for lr in batchnorm.LRS]  # fmt: skip
    decided = all_of(*parts([(batchnorm.MATCH, iv) for _, iv in judged]))
    seeds = {lr: sum(1 for a, _ in cells if a == f"batchnorm-lr{lr:g}") for lr in batchnorm.LRS}
    title = "The from-scratch BN matches torch's BN"
    return row(
        title,
        verdict_of(report[title]),
        decided,
        "; ".join(f"lr {lr:g} ({seeds[lr]} seeds): {iv.text()}" for lr, iv in judged),
        batchnorm.MATCH,
        "final validation accuracy per run; lr 1 adds the two seeds run after the report "
        "(this page, 'A closer look at lr 1.0')",
    )


def batchnorm_rows() -> tuple[list, Fit, float]:
    report = read("batchnorm")
    cells = runs(report) | lr1_seeds((DOCS / "batchnorm.md").read_text())
    fit = Fit(cells, noise=Fit(_trained(cells)))
    bn, none = _largest(cells, "batchnorm"), _largest(cells, "none")
    tolerance = SUPPORTED if (bn or 0) > (none or 0) else INCONCLUSIVE
    rows = [
        row("BN converges in fewer steps", verdict_of(report["BN converges in fewer steps"]),
            NEEDS_CURVES, "-", batchnorm.CONVERGES,
            "the area under each seed's validation curve"),
        row("BN tolerates higher learning rates",
            verdict_of(report["BN tolerates higher learning rates"]), tolerance,
            f"largest rate where every seed trains: with BN {bn:g}, without {none:g}",
            batchnorm.TOLERATES,
            "no interval; whether a run at chance still learns needs its loss curve: as reported"),
        _bn_placement(report, cells, fit),
        _scratch(report, cells, fit),
    ]  # fmt: skip
    return rows, fit, hours(report)


# Read off the seed-0 figures the reports keep (the tables hold no curves): how far each curve
# still moved per epoch over its last two epochs. A claim's curve is settled below its margin.
PLACEMENT_DRIFT = (
    "seed 0's figure (placement-hour-2026-12-01/figures/placement_val.png) shows every layout's "
    "validation accuracy still rising about 4 points an epoch over its last two epochs"
)
DEGRADATION_DRIFT = (
    "seed 0's figures (degradation-hour-2026-11-30/figures/) show every net's training error "
    "still falling about 4-5 points an epoch over its last two epochs (plain56_w8 about 71% at "
    "step 1,053, 63.3% at 1,755)"
)


def _unsettled(interval_verdict: str) -> str:
    return f"{UNTRAINED} (the interval alone: {interval_verdict})"


def placement_rows() -> tuple[list, Fit, float]:
    report = read("placement")
    fit = Fit(runs(report, rename={"relu-before-bn": "bn-after-relu"}))
    pre = fit.gap("pre-activation", "post-activation")
    before = fit.gap("post-activation", "bn-after-relu")
    rows = [
        row("Pre-activation vs post-activation",
            verdict_of(report["Pre-activation vs post-activation"]),
            _unsettled(placement.PRE.decide(pre)), pre.text(), placement.PRE, PLACEMENT_DRIFT),
        row("BN before vs after ReLU", verdict_of(report["BN before vs after ReLU"]),
            _unsettled(placement.BEFORE.decide(before)), before.text(), placement.BEFORE,
            PLACEMENT_DRIFT),
    ]  # fmt: skip
    return rows, fit, hours(report)


def _two_seeds(cell: str) -> list[float]:
    """The two values behind 'mean ± std' of two seeds (which seed is which is not kept)."""
    mean, std = mean_std(cell)
    return [mean - std / 2**0.5, mean + std / 2**0.5]


def degradation_rows() -> tuple[list, None, float]:
    report = read("degradation")
    error = {}
    for kind, title in (("plain", "Deeper plain nets train worse"),
                        ("resnet", "Deeper residual nets train better")):  # fmt: skip
        for r in table(report[title]):
            error[kind, int(r["depth"])] = _two_seeds(r["training error"])
    plain = welch_interval(error["plain", 56], error["plain", 20])
    residual = welch_interval(error["resnet", 20], error["resnet", 56])
    unpaired = "unpaired (Welch): the tables keep each arm's mean ± std, not each seed's error"
    rows = [
        row("Deeper plain nets train worse", verdict_of(report["Deeper plain nets train worse"]),
            _unsettled(degradation.PLAIN_WORSE.decide(plain)), plain.text(),
            degradation.PLAIN_WORSE, f"{unpaired}; {DEGRADATION_DRIFT}"),
        row("Deeper residual nets train better",
            verdict_of(report["Deeper residual nets train better"]),
            _unsettled(degradation.RESIDUAL_BETTER.decide(residual)), residual.text(),
            degradation.RESIDUAL_BETTER, f"{unpaired}; {DEGRADATION_DRIFT}"),
        row("Skip connections remove the degradation",
            verdict_of(report["Skip connections remove the degradation"]),
            _unsettled(all_of(*parts([(Protocol("-", BETTER, 0.01, "-"), plain),
                                      (Protocol("-", AT_LEAST, 0.01, "-"), residual)]))),
            f"plain {plain.text()}; residual {residual.text()}", degradation.REMOVED,
            f"{unpaired}; {DEGRADATION_DRIFT}"),
    ]  # fmt: skip
    return rows, None, hours(report)


def optimizers_rows() -> tuple[list, Fit, float]:
    report = read("optimizers")
    cells = runs(report)
    fit = Fit(cells)
    title = "Momentum speeds up SGD"
    best = {r["optimizer"]: float(r["best lr"].split()[0]) for r in table(report[title])}
    old = fit.gap(f"sgd-momentum-lr{best['sgd-momentum']:g}", f"sgd-lr{best['sgd']:g}")
    names = list(best)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    decided = []
    for a, b in pairs:
        iv = fit.gap(f"{a}-lr{best[a]:g}", f"{b}-lr{best[b]:g}", family=len(pairs))
        if iv.low > 0 or iv.high < 0:
            decided.append(f"{a} over {b}" if iv.low > 0 else f"{b} over {a}")
    rows = [
        row(title, verdict_of(report[title]),
            "needs the runs again: the protocol measures the training-accuracy curve, on a new "
            "grid (one weight decay for all; plain SGD swept to 3)",
            f"the old metric, final validation accuracy at the rates chosen on it: {old.text()}",
            optimizers.MOMENTUM, "paired by seed over the whole grid"),
        row("Optimizers ranked at this budget",
            "best: rmsprop (sgd below it beyond the noise; the rest within it)", NEEDS_TEST,
            f"on validation, the set the rates were chosen on, held jointly over {len(pairs)} "
            f"pairs: decided pairs: {', '.join(decided) or 'none'}",
            optimizers.RANKED, "a best optimizer only ahead of every other"),
    ]  # fmt: skip
    return rows, fit, hours(report)


EXPERIMENTS = {
    "batchnorm": batchnorm_rows,
    "degradation": degradation_rows,
    "optimizers": optimizers_rows,
    "placement": placement_rows,
}
HEADERS = ["claim", "verdict as reported", "verdict now", "95% interval (from the tables)",
           "test", "rests on"]  # fmt: skip


def block(name: str) -> str:
    rows, fit, spent = EXPERIMENTS[name]()
    spread = f" The {fit.spread()}." if fit is not None else ""
    return (
        f"**Re-analysed under the new method from the committed run table, on {DATE}** "
        f"(`python scripts/reanalyse_hour.py`; the run directories are not kept, so what needs "
        f"curves or per-run test reads needs the runs again).{spread}\n\n"
        + markdown_table(HEADERS, rows)
        + f"\n\nThe runs behind it took {spent:.2f} h of training here; running them again costs "
        "about that, more for a longer or wider grid.\n"
    )


def render(text: str, name: str) -> str:
    pattern = re.compile(r"(<!-- reanalysis: hour -->\n).*?(<!-- end reanalysis -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"no '<!-- reanalysis: hour -->' block in {name}.md")
    new = block(name)
    return pattern.sub(lambda m: m.group(1) + new + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a page is out of date")
    parser.add_argument("--print", action="store_true", help="print the blocks, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name in EXPERIMENTS:
        if args.print:
            print(f"## {name}\n\n{block(name)}")
            continue
        path = DOCS.parent / "experiments" / f"{name}.md"
        old = path.read_text()
        new = render(old, name)
        if new != old:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(
            f"out of date: {', '.join(stale)}; run python scripts/reanalyse_hour.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
