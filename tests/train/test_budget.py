"""Training to a time budget: durations, the sizing arithmetic, and whole runs on a fake clock
on which every training step takes a known time (no timing of the real machine is asserted)."""

import json
import math

import pytest

from reslab.errors import ConfigError
from reslab.metrics.evaluation import tta_views
from reslab.run.config import parse_duration
from reslab.run.length import Length
from reslab.train import budget as budget_module
from reslab.train import engine, session
from reslab.train.budget import AFTER_S, EVAL_COST, MARGIN, MARGIN_S, TimeBudget, margin
from reslab.train.stop import StopRequested
from tests.conftest import tiny_flags


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150), ("600", 600),
     (" 1m 30s ", 90), (45, 45), ("10min", 600)],
)  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "10x", "m"])
def test_bad_durations_name_the_key(text):
    with pytest.raises(ConfigError, match="time_budget: cannot read"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["-5s", "-5", " -1h"])
def test_negative_durations_are_called_negative(text):
    with pytest.raises(ConfigError, match=r"time_budget: '.*' is negative"):
        parse_duration(text)


def test_the_margin_is_a_share_of_the_budget_with_a_floor_in_seconds():
    assert margin(600) == pytest.approx(MARGIN * 600) == pytest.approx(6.0)  # 1% of 10 minutes
    assert margin(120) == MARGIN_S == 3.0  # 1% of 2 minutes would be 1.2 s
    assert margin(1) == MARGIN_S


class Limits:
    epochs, max_steps, time_budget = 0, 0, 100.0


def test_the_budget_affords_what_is_left_after_the_reserve():
    training = [0.0]  # the run's training seconds, as its stopwatch reads them
    length = Length.of(Limits(), steps_per_epoch=10)
    b = TimeBudget(100.0, 0.0, length, lambda: training[0], batch_size=32,
                   evaluated_images=(0, 0))  # fmt: skip
    b.stepped(1)
    b.stepped(2)  # the warm-up is behind: timing starts here
    training[0] = 10.0  # 20 steps in 10 s
    b.refit(22)  # not sized yet: a check point before the probe's end changes nothing
    assert length.total_steps == length.cap and not b.sized
    b.stepped(22)  # the probe has its 3 s: the run is sized
    assert b.sized and b.step_s == 0.5
    # At t = 12 s: 88 s left, less the reserve (the report and the margin), at 0.5 s a step.
    reserve = AFTER_S + margin(100)
    assert b.fit(22, now=12.0) == 22 + math.floor((88 - reserve) / 0.5)
    assert b.fit(22, now=99.0) == 22  # nothing left: stop where it is
    length.cap = 50
    assert b.fit(22, now=12.0) == 50  # epochs/max_steps end it first


def test_costly_evaluations_measured_before_the_first_fit_still_give_the_longest_length():
    # A small training split with a large validation one, whose pass was timed before the
    # probe ended: each epoch end costs as much as 40 steps. The longest length that fits is
    # found exactly (a fixed-point iteration of a few rounds swung between lengths and stopped
    # such a run at once).
    training = [0.0]
    length = Length.of(Limits(), steps_per_epoch=7)
    b = TimeBudget(100.0, 0.0, length, lambda: training[0], batch_size=256,
                   evaluated_images=(2000, 1000))  # fmt: skip
    b.evaluated(2.0, 2000)  # 1 ms an image: an epoch end 2 s, the final test 1 s
    b.stepped(1)
    b.stepped(2)
    training[0] = 2.0  # 40 steps in 2 s: 0.05 s a step
    b.stepped(42)
    assert b.sized and b.step_s == pytest.approx(0.05)

    def cost(total):  # what the run still needs at t = 10 s, at step 42 of 7-step epochs
        ends = math.ceil(total / 7) - 42 // 7
        return (total - 42) * 0.05 + 0.001 * (ends * 2000 + 1000) + AFTER_S + margin(100)

    best = b.fit(42, now=10.0)
    assert cost(best) <= 90.0 < cost(best + 1)


def test_an_evaluation_not_yet_timed_is_priced_from_the_training_step_per_tta_view():
    training = [0.0]
    length = Length.of(Limits(), steps_per_epoch=10)
    b = TimeBudget(100.0, 0.0, length, lambda: training[0], batch_size=32,
                   evaluated_images=(0, 1000), eval_passes=6)  # fmt: skip
    b.stepped(1)
    b.stepped(2)
    training[0] = 10.0
    b.stepped(22)  # 0.5 s a step of 32 images
    per_image = EVAL_COST * 6 * 0.5 / 32
    assert b.reserve(22, 100) == pytest.approx(per_image * 1000 + AFTER_S + margin(100))
    b.evaluated(6.0, 1000)  # once timed, the measurement replaces the estimate
    assert b.reserve(22, 100) == pytest.approx(6.0 + AFTER_S + margin(100))


class FakeClock:
    """Each training step advances the clock by `step_s`; nothing else takes time but the
    evaluation a budgeted run times before training, which costs EVAL_S an image and view."""

    def __init__(self, step_s):
        self.now, self.step_s = 0.0, step_s

    def __call__(self):
        return self.now


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock(1.0)
    real_step = engine.train_step

    def step(s, x, y):
        clock.now += clock.step_s(clock.now) if callable(clock.step_s) else clock.step_s
        return real_step(s, x, y)

    monkeypatch.setattr(engine, "train_step", step)
    monkeypatch.setattr(engine, "time_evaluation", fake_time_evaluation)
    monkeypatch.setattr(engine, "clock", clock)
    monkeypatch.setattr(budget_module, "clock", clock)
    monkeypatch.setattr(session, "clock", clock)
    return clock


EVAL_S = 0.004  # the fake timed evaluation: seconds an image and view (the estimate: 0.008)


def fake_time_evaluation(s, images=500):
    return images * EVAL_S * tta_views(s.config.tta, s.config.tta_shift), images


# What 100 fake seconds at 1 s a step afford: the budget less the reserve (the CLI's report, the
# margin, and the final test pass over the sample's 1,000 images at the cost the run timed
# before training): 91 steps, where the estimate from the training speed would leave 87.
AFFORDED = 100 - AFTER_S - margin(100) - EVAL_S * 1000


def _budgeted(tiny_config, seconds=100.0, **overrides):
    settings = dict(max_steps=None, epochs=1000, time_budget=seconds, val_split=0, batch_size=50,
                    model="small_cnn")  # fmt: skip
    return tiny_config(**{**settings, **overrides})


def test_a_budgeted_run_fills_its_budget_and_lands_at_the_end_of_its_schedule(
    tmp_path, tiny_config, fake_clock
):
    result = session.fit(_budgeted(tiny_config, schedule="onecycle"), tmp_path / "r", quiet=True,
                        started=0.0)  # fmt: skip
    s = result.summary
    assert abs(s["steps"] - AFFORDED) <= 2
    assert s["stopped_by"] == "time budget" and s["time_budget_s"] == 100
    assert s["budget_spent_s"] <= 100
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").open()]
    assert rows[-1]["lr"] < 1e-3 * 0.1  # one-cycle ran down to its end, not cut mid-way


def test_the_timed_final_evaluation_counts_the_tta_views(tmp_path, tiny_config, fake_clock):
    # Six forward passes an image (flips and 2-pixel shifts): the final test pass, timed as the
    # run evaluates, costs six times one pass, which leaves 20 fewer steps than AFFORDED.
    config = _budgeted(tiny_config, tta=True, tta_shift=2)
    result = session.fit(config, tmp_path / "r", quiet=True, started=0.0)
    one_pass = EVAL_S * 1000
    assert abs(result.summary["steps"] - (AFFORDED - 5 * one_pass)) <= 2


def test_a_slower_machine_shortens_the_run_and_it_still_ends_in_time(
    tmp_path, tiny_config, fake_clock
):
    fake_clock.step_s = lambda now: 1.0 if now < 40 else 2.0  # the machine slows down at 40 s
    result = session.fit(_budgeted(tiny_config, check_every=5), tmp_path / "r", quiet=True,
                        started=0.0)  # fmt: skip
    s = result.summary
    assert s["stopped_by"] == "time budget" and s["budget_spent_s"] <= 100 + 2 * 5
    assert s["steps"] < AFFORDED - 15  # far fewer than the first speed promised


def _sizes_seen(monkeypatch, fake_clock, fixed_s: float) -> list[int]:
    """The image size of every training step, in order, on a fake clock where a step costs
    `fixed_s` plus the rest of a full-size second in proportion to its pixels."""
    seen = []
    fake_clock.step_s = lambda now: fixed_s + (1 - fixed_s) * (seen[-1] / 32) ** 2
    timed = engine.train_step
    record = lambda s, x, y: seen.append(x.shape[-1]) or timed(s, x, y)  # noqa: E731
    monkeypatch.setattr(engine, "train_step", record)
    return seen


def test_progressive_resizing_prices_small_steps_cheaper_and_keeps_its_parts_equal(
    tmp_path, tiny_config, fake_clock, monkeypatch
):
    # A step costs its pixels' share of a full-size step's 1 s: 0.25 s at 16 px, 0.5625 at 24.
    seen = _sizes_seen(monkeypatch, fake_clock, fixed_s=0.0)
    config = _budgeted(tiny_config, model="resnet9_w16", progressive=[16, 24], schedule="onecycle")
    s = session.fit(config, tmp_path / "r", quiet=True, started=0.0).summary
    assert s["stopped_by"] == "time budget" and s["budget_spent_s"] <= 100
    # About 91 full-size seconds of steps, now worth 91 / 0.604 steps, in three equal parts.
    counts = [seen.count(v) for v in (16, 24, 32)]
    assert abs(s["steps"] - AFFORDED / ((0.25 + 0.5625 + 1) / 3)) <= 6, (s["steps"], counts)
    assert max(counts) - min(counts) <= 2, counts


def test_progressive_sizes_never_go_back_when_small_steps_cost_more_than_their_pixels(
    tmp_path, tiny_config, fake_clock, monkeypatch
):
    # A fixed 0.4 s a step besides the pixels' share: each larger size is cheaper per full-size
    # step than priced, so a refit lengthens the run and moves the part's end past the step.
    seen = _sizes_seen(monkeypatch, fake_clock, fixed_s=0.4)
    config = _budgeted(
        tiny_config, model="resnet9_w16", progressive=[16, 24], schedule="onecycle", check_every=5
    )
    s = session.fit(config, tmp_path / "r", quiet=True, started=0.0).summary
    assert seen == sorted(seen), [i for i in range(1, len(seen)) if seen[i] < seen[i - 1]]
    assert set(seen) == {16, 24, 32}
    assert s["stopped_by"] == "time budget" and s["budget_spent_s"] <= 100


def test_a_resumed_progressive_budgeted_run_goes_on_at_the_size_it_had_reached(
    tmp_path, tiny_config, fake_clock, monkeypatch
):
    seen = _sizes_seen(monkeypatch, fake_clock, fixed_s=0.4)
    config = _budgeted(
        tiny_config, model="resnet9_w16", progressive=[16, 24], schedule="onecycle",
        check_every=5, checkpoint_every=0.001,
    )  # fmt: skip
    with pytest.raises(StopRequested):
        session.fit(config, tmp_path / "r", quiet=True, started=0.0,
                    should_stop=lambda step: seen[-1] == 24 and seen.count(24) == 10)  # fmt: skip
    before = len(seen)
    fake_clock.now = 1000.0
    s = session.resume(tmp_path / "r", quiet=True, started=1000.0).summary
    assert seen[before] == 24 and seen == sorted(seen)
    assert s["stopped_by"] == "time budget" and s["budget_spent_s"] <= 100


def test_a_budget_alone_sets_the_length(tmp_path, tiny_config, fake_clock):
    config = _budgeted(tiny_config, epochs=0, max_steps=0, schedule="onecycle")
    result = session.fit(config, tmp_path / "r", quiet=True, started=0.0)
    s = result.summary
    assert s["stopped_by"] == "time budget" and abs(s["steps"] - AFFORDED) <= 2
    with pytest.raises(ConfigError, match="max_steps or time_budget"):
        tiny_config(max_steps=0, epochs=0).validate()  # no length at all


def test_epochs_end_a_budgeted_run_first_when_they_come_first(tmp_path, tiny_config, fake_clock):
    result = session.fit(_budgeted(tiny_config, epochs=1), tmp_path / "r", quiet=True,
                        started=0.0)  # fmt: skip
    assert result.summary["stopped_by"] == "epochs" and result.summary["steps"] == 80


def test_a_resumed_budgeted_run_keeps_the_time_it_had_spent(tmp_path, tiny_config, fake_clock):
    config = _budgeted(tiny_config, checkpoint_every=0.001)
    with pytest.raises(StopRequested):
        session.fit(config, tmp_path / "r", quiet=True, started=0.0,
                   should_stop=lambda step: step == 30)  # fmt: skip
    fake_clock.now = 1000.0  # later, in another process: a new session clock
    result = session.resume(tmp_path / "r", quiet=True, started=1000.0)
    s = result.summary
    assert s["stopped_by"] == "time budget"
    assert abs(s["steps"] - AFFORDED) <= 3  # one budget over both sessions
    assert s["budget_spent_s"] <= 100


def test_cli_takes_durations_and_says_what_stopped_the_run(tmp_path, cli):
    out = tmp_path / "run"
    r = cli("train", *tiny_flags(max_steps=None, epochs=50, time_budget="4s"), "--out", out)
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_by"] == "time budget" and summary["time_budget_s"] == 4
    assert "time budget 4 s" in r.stdout and "stopped by time budget (" in r.stdout
    assert "time_budget = 4.0" in (out / "config.toml").read_text()
