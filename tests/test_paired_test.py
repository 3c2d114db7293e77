"""scripts/paired_test.py: two models on the same test images, the paired interval."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("paired_test", ROOT / "scripts/paired_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_interval_is_the_paired_t_interval_and_the_p_mcnemars():
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(1000, generator=g) < 0.85).double()
    b = a.clone()
    flip = torch.randperm(1000, generator=g)
    b[flip[:40]], b[flip[40:55]] = 1.0, 0.0  # b gains some images and loses others
    r = _script().compare(a, b)
    d = (b - a).numpy()
    low, high = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    assert r["interval"] == pytest.approx([100 * low, 100 * high])
    assert r["lead"] == pytest.approx(100 * d.mean()) == r["acc_b"] - r["acc_a"]
    n_a, n_b = int((d < 0).sum()), int((d > 0).sum())
    assert (r["only_a_right"], r["only_b_right"]) == (n_a, n_b)
    assert r["mcnemar_p"] == stats.binomtest(n_b, n_a + n_b).pvalue


def test_two_runs_compared_on_the_shipped_sample(finished_run, data_dir, capsys):
    code = _script().main([str(finished_run), "pretrained:resnet20", "--data-dir", str(data_dir)])
    assert code == 0, capsys.readouterr().err
    r = json.loads(capsys.readouterr().out)
    assert r["images"] == 1000 and r["acc_b"] == 88.0  # the shipped default on the sample
    assert r["interval"][0] < r["lead"] < r["interval"][1]
