"""why-bn: its grid, where it finds the digit sets, and its verdicts computed from synthetic runs
whose measurements (probes.jsonl) say as claimed, the opposite, or too little to tell."""

import json
import math
import zlib

import pytest

from reslab.experiments import BUDGETS, EXPERIMENTS
from reslab.experiments.analysis import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from reslab.experiments.runner import ExperimentResults, RunResult
from reslab.experiments.why_bn import digit_sets
from reslab.report.runs import RunRecord
from reslab.run.directory import RunDir
from reslab.train import build_config

WHY = EXPERIMENTS["why-bn"]
IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # fmt: skip


def _idx(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in IDX:
        (folder / name).write_bytes(b"")
    return folder


def test_mnist_is_used_only_where_its_files_are_told_apart_from_fashion_mnists(tmp_path):
    assert digit_sets(str(tmp_path)) == []
    flat = _idx(tmp_path / "flat")  # as the shared folder: one set's files, the names both use
    assert digit_sets(str(flat)) == ["fashion-mnist"]
    _idx(tmp_path / "both" / "fashion-mnist")
    _idx(tmp_path / "both" / "mnist")
    assert digit_sets(str(tmp_path / "both")) == ["fashion-mnist", "mnist"]


def test_the_grid_gives_the_fully_connected_runs_their_own_data_length_and_seeds(tmp_path):
    quick = BUDGETS["quick"]
    budget = type(quick)(**{**quick.__dict__, "overrides": {
        **quick.overrides, "data_dir": str(_idx(tmp_path))}})  # fmt: skip
    specs = {s.name: s for s in WHY.grid(budget)}
    assert set(specs) == {"mlp-fashion-mnist-batchnorm", "mlp-fashion-mnist-none",
                          "vgg-batchnorm", "vgg-batchnorm-noisy", "vgg-none"}  # fmt: skip
    mlp = specs["mlp-fashion-mnist-none"]
    config = build_config(budget.overrides, {"epochs": budget.epochs}, mlp.overrides)
    assert (config.dataset, config.batch_size, config.max_steps, config.epochs) == (
        "fashion-mnist", 60, 5000, 0)  # fmt: skip
    assert mlp.seeds == 5 and specs["vgg-none"].seeds == 0
    assert mlp.probe.points == 50 and mlp.probe.images == 1000
    hour = {s.name: s for s in WHY.grid(BUDGETS["hour"])}
    assert hour["vgg-none"].overrides["epochs"] == 12


# -- synthetic runs -------------------------------------------------------------------------

TIMES = 6  # measurements per run: the start and 5 more


def _wobble(seed, key):
    """A few percent of run-to-run noise, different in every run."""
    return 0.03 * ((seed * 7 + zlib.crc32(repr(key).encode()) % 5) % 3 - 1)


def _inputs(layers, move, seed, key):
    """Percentiles of one unit per layer, the median walking by `move` a measurement."""
    step = move * (1 + _wobble(seed, key))
    return [[[[step * t - 1, step * t, step * t + 1]]] * layers for t in range(TIMES)]


def _along(scale):
    # loss range `scale`, largest gradient change 2 * scale, effective beta `scale`
    return {"steps": [0.1, 0.2], "distance": [1.0, 2.0], "loss": [2.0, 2.0 + scale],
            "grad_change": [scale, 2 * scale], "start_loss": 2.0}  # fmt: skip


def _write(run_dir, rows):
    run_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps({"step": 10 * t, **row}) + "\n" for t, row in enumerate(rows))
    RunDir(run_dir).probes.write_text(text)


def _run(spec, seed, tmp_path, world):
    """A finished run whose accuracy and measurements `world` sets for its arm."""
    norm, key = spec.group["norm"], (spec.name, seed)
    accs = [a + _wobble(seed, key) / 10 for a in world["acc"][spec.group["part"], norm]]
    inputs = _inputs(3 if spec.group["part"] == "mlp" else 8, world["move"][norm], seed, key)
    rows = [{"inputs": i} for i in inputs]
    if spec.group["part"] == "cnn" and norm != "batchnorm-noisy":
        l2, cosine = world["shift"][norm]
        scale = world["rough"][norm] * (1 + _wobble(seed, key))
        for t, row in enumerate(rows):
            row["shift"] = [[0.0, 1.0]] + [[l2 * (1 + _wobble(seed, (key, t))), cosine]] * 8
            row["along"] = _along(scale)
    run_dir = tmp_path / "runs" / f"{spec.name}-s{seed}"
    _write(run_dir, rows)
    metrics = [{"epoch": i + 1, "step": 100 * (i + 1), "train_loss": 1.0, "train_acc": a,
                "val_acc": a, "epoch_time_s": 1.0} for i, a in enumerate(accs)]  # fmt: skip
    record = RunRecord(run_dir, {"epochs": len(accs)}, metrics, {"test_acc": accs[-1]})
    return RunResult(spec, seed, record, "done")


def _results(tmp_path, world, seeds=None):
    quick = BUDGETS["quick"]
    budget = type(quick)(**{**quick.__dict__, "overrides": {
        **quick.overrides, "data_dir": str(_idx(tmp_path / "digits"))}})  # fmt: skip
    runs = [
        _run(spec, seed, tmp_path, world)
        for spec in WHY.grid(budget)
        for seed in range(seeds or max(2, spec.seeds))
    ]
    return ExperimentResults(WHY, budget, tmp_path, runs)


AS_CLAIMED = {
    "acc": {("mlp", "batchnorm"): [0.80, 0.84, 0.86], ("mlp", "none"): [0.60, 0.70, 0.76],
            ("cnn", "batchnorm"): [0.40, 0.50, 0.55],
            ("cnn", "batchnorm-noisy"): [0.40, 0.50, 0.55],
            ("cnn", "none"): [0.30, 0.38, 0.45]},
    "move": {"batchnorm": 0.01, "batchnorm-noisy": 1.0, "none": 0.3},
    "shift": {"batchnorm": (0.2, 0.8), "none": (0.1, 0.9)},
    "rough": {"batchnorm": 1.0, "none": 4.0},
}  # fmt: skip
OPPOSITE = {
    "acc": {("mlp", "batchnorm"): [0.60, 0.70, 0.76], ("mlp", "none"): [0.80, 0.84, 0.86],
            ("cnn", "batchnorm"): [0.40, 0.50, 0.55],
            ("cnn", "batchnorm-noisy"): [0.20, 0.25, 0.30],
            ("cnn", "none"): [0.30, 0.38, 0.45]},
    "move": {"batchnorm": 0.3, "batchnorm-noisy": 0.01, "none": 0.3},
    "shift": {"batchnorm": (0.02, 0.99), "none": (0.1, 0.9)},
    "rough": {"batchnorm": 4.0, "none": 1.0},
}  # fmt: skip


@pytest.fixture
def no_figures(monkeypatch):
    """Verdicts only: the figures (most of the analysis's time) are drawn in one test."""
    from reslab.experiments import why_bn

    for name in ("bands_figure", "curves_figure", "val_acc_figure"):
        monkeypatch.setattr(why_bn, name, lambda *args, **kwargs: args[1])


def _verdicts(sections):
    assert [s.title for s in sections][-1] == "What this shows"
    return [s.verdict for s in sections[:4]]


def test_verdicts_support_the_claims_where_the_runs_bear_them_out(tmp_path):
    sections = WHY.analyze(_results(tmp_path, AS_CLAIMED), tmp_path)
    assert _verdicts(sections) == [SUPPORTED] * 4
    assert "noisy BN" in sections[1].evidence and "(t, " in sections[1].evidence
    lesson = sections[-1].evidence
    assert "Ioffe & Szegedy 2015" in lesson and "Santurkar et al. 2018" in lesson
    for s in sections[:4]:
        assert all(f.is_file() for f in s.figures) and len(s.captions) == len(s.figures)


def test_verdicts_refute_the_claims_where_the_runs_say_the_opposite(tmp_path, no_figures):
    sections = WHY.analyze(_results(tmp_path, OPPOSITE), tmp_path)
    assert _verdicts(sections) == [NOT_SUPPORTED] * 4


def test_one_seed_decides_nothing_and_says_so(tmp_path, no_figures):
    sections = WHY.analyze(_results(tmp_path, AS_CLAIMED, seeds=1), tmp_path)
    assert _verdicts(sections) == [INCONCLUSIVE] * 4
    assert all("--seeds 2" in s.evidence for s in sections[:4])


def test_without_digit_files_the_first_claim_says_why_it_was_not_measured(tmp_path, no_figures):
    results = _results(tmp_path, AS_CLAIMED)
    results.runs = [r for r in results.runs if r.spec.group["part"] == "cnn"]
    first = WHY.analyze(results, tmp_path)[0]
    assert first.verdict == INCONCLUSIVE and "--data-dir" in first.evidence


@pytest.mark.parametrize("norm", ["batchnorm", "none"])
def test_the_landscape_numbers_are_log10_means_over_the_measurements_after_the_start(
    tmp_path, norm
):
    from reslab.experiments.why_bn_measures import shift_l2, smoothness

    run = next(r for r in _results(tmp_path, AS_CLAIMED).runs if r.spec.name == f"vgg-{norm}")
    rough = AS_CLAIMED["rough"][norm] * (1 + _wobble(0, (run.spec.name, 0)))
    assert smoothness("loss range")(run) == pytest.approx(math.log10(rough))
    assert smoothness("gradient change")(run) == pytest.approx(math.log10(2 * rough))
    assert smoothness("effective beta")(run) == pytest.approx(math.log10(rough))
    l2 = AS_CLAIMED["shift"][norm][0]
    assert abs(shift_l2(run) - math.log10(l2)) < 0.02  # the first layer (zero) left out
