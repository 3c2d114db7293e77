"""Learning-rate schedules: shapes, warmup, and agreement with torch's own schedulers."""

import math

import pytest
import torch

from reslab.run.config import build_config
from reslab.run.schedule import (
    build_scheduler,
    image_size_at,
    lr_factor,
    progressive_cost,
    progressive_part,
)


def _lrs(config, total, per_epoch=10):
    f = lr_factor(config, total, per_epoch)
    return [config.lr * f(s) for s in range(total)]


def test_multistep_matches_torch_multisteplr():
    config = build_config({"max_steps": 100, "schedule": "multistep", "milestones": [0.5, 0.75]})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    ref = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[50, 75], gamma=0.1)
    expected = []
    for _ in range(100):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert _lrs(config, 100) == pytest.approx(expected)


def test_cosine_matches_torch_cosineannealing():
    config = build_config({"max_steps": 40, "schedule": "cosine"})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40)
    expected = []
    for _ in range(40):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert _lrs(config, 40) == pytest.approx(expected, abs=1e-9)


def test_warmup_then_shape():
    config = build_config({"max_steps": 100, "schedule": "constant", "warmup_epochs": 2})
    lrs = _lrs(config, 100, per_epoch=10)
    assert lrs[:20] == pytest.approx([0.1 * (i + 1) / 20 for i in range(20)])
    assert lrs[20:] == pytest.approx([0.1] * 80)


def test_onecycle_rises_then_falls():
    config = build_config({"max_steps": 100, "schedule": "onecycle"})
    lrs = _lrs(config, 100)
    peak = max(range(100), key=lambda i: lrs[i])
    assert 25 <= peak <= 31 and lrs[0] < 0.01 and lrs[-1] < 0.003
    assert max(lrs) == pytest.approx(0.1, rel=1e-3)


def test_step_and_linear():
    step = _lrs(build_config({"max_steps": 10, "schedule": "step", "step_size": 0.5}), 10)
    assert step == pytest.approx([0.1] * 5 + [0.01] * 5)
    linear = _lrs(build_config({"max_steps": 10, "schedule": "linear"}), 10)
    assert linear == pytest.approx([0.1 * (1 - i / 10) for i in range(10)])
    assert all(math.isfinite(v) for v in linear)


def test_scheduler_state_is_just_the_step():
    config = build_config({"max_steps": 20, "schedule": "cosine"})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    sched = build_scheduler(opt, config, 20, 5)
    for _ in range(7):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    sched2 = build_scheduler(opt2, config, 20, 5)
    sched2.load_state_dict(sched.state_dict())
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_progressive_sizes_take_equal_parts_of_the_run_then_the_full_size():
    sizes = [image_size_at([16, 24], step, 90) for step in range(90)]
    assert sizes == [16] * 30 + [24] * 30 + [None] * 30
    assert [image_size_at([8], s, 5) for s in range(5)] == [8, 8, 8, None, None]
    assert image_size_at([], 0, 10) is None and image_size_at([16], 10, 10) is None


def test_progressive_cost_sums_each_steps_share_of_the_full_size_pixels():
    cost = progressive_cost([16, 24], 32)
    for total in (1, 7, 90, 91, 1000):
        for first, last in ((0, total), (3, total // 2 + 1), (total // 3, total), (5, 5)):
            sizes = [image_size_at([16, 24], i, total) or 32 for i in range(first, last)]
            assert cost(first, last, total) == pytest.approx(sum((v / 32) ** 2 for v in sizes))
    assert cost(0, 90, 90) == pytest.approx(30 * (0.25 + 0.5625 + 1))


def test_progressive_parts_never_go_back_and_the_cost_follows_the_parts_run():
    # Moved to 24 px at step 30 of a 90-step run, which a refit then made 120 steps long: the
    # steps to come stay at 24 px until the longer run's own 24 px part ends (step 80).
    assert progressive_part([16, 24], 35, 120) == 0 and progressive_part([16, 24], 35, 120, 1) == 1
    assert image_size_at([16, 24], 79, 120, reached=1) == 24
    assert image_size_at([16, 24], 80, 120, reached=1) is None
    cost = progressive_cost([16, 24], 32)
    # Done: 30 steps at 16 px, 5 at 24; to come: 45 at 24 (35..79), 40 at full size.
    assert cost(0, 35, 120, (30,), 35) == pytest.approx(30 * 0.25 + 5 * 0.5625)
    assert cost(35, 120, 120, (30,), 35) == pytest.approx(45 * 0.5625 + 40)
    # A part skipped (two switches at one step) costs nothing; without switches, as before.
    assert cost(0, 10, 10, (4, 4), 6) == pytest.approx(4 * 0.25 + 2 + 4)
    assert cost(0, 90, 90, (), 0) == cost(0, 90, 90)
