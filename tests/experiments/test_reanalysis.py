"""The re-analysis of the committed hour reports: read from their tables, written into the docs."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "reanalyse_hour.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("reanalyse_hour", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_hold_the_current_reanalysis():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_optimizer_grid_pairs_by_seed(script):
    """36 runs of 18 cells: seed 1 ahead in 16; the paired residual spread is 0.34 points on 17
    degrees of freedom, against 0.74 for the spread of single runs."""
    cells = script.runs(script.read("optimizers"))
    arms = sorted({arm for arm, _ in cells})
    assert len(cells) == 36 and sum(cells[a, 1] > cells[a, 0] for a in arms) == 16
    rows, fit, spent = script.optimizers_rows()
    assert fit.df == 17 and fit.sigma == pytest.approx(0.0034, abs=5e-5)
    assert spent == pytest.approx(2.87, abs=0.01)


def test_scratch_bn_no_longer_matches_at_lr_1(script):
    rows, fit, _ = script.batchnorm_rows()
    scratch = {r[0]: r for r in rows}["The from-scratch BN matches torch's BN"]
    assert scratch[1] == "supported" and scratch[2] == "inconclusive at this budget"
    assert "lr 1 (4 seeds): -1.30 points" in scratch[3]


def test_parsing_reads_mean_and_std(script):
    assert script.mean_std("66.7 ± 0.5%") == pytest.approx((0.667, 0.005))
    assert script.mean_std("10.0%") == (0.1, 0.0)
    half = 0.015 / 2**0.5  # two seeds 1.5 points std apart lie half a std * sqrt(2) each side
    assert script._two_seeds("39.0 ± 1.5%") == pytest.approx([0.39 - half, 0.39 + half])
