"""What epochs, max_steps and a time budget mean together: one rule, from the config's layers to
the loop's last step."""

from dataclasses import dataclass

import pytest

from reslab.errors import ConfigError
from reslab.run.length import UNBOUNDED_STEPS, Length, check_limits, merge


@dataclass
class Limits:
    epochs: int = 0
    max_steps: int = 0
    time_budget: float = 0.0


@pytest.mark.parametrize(
    ("limits", "epochs", "total"),
    [
        (Limits(epochs=3), 3, 30),  # 10 steps an epoch
        (Limits(max_steps=25), 3, 25),  # the third epoch is cut at step 25
        (Limits(epochs=2, max_steps=25), 2, 20),  # the first limit reached
        (Limits(epochs=5, max_steps=25), 5, 25),
        (Limits(time_budget=60.0), UNBOUNDED_STEPS // 10, UNBOUNDED_STEPS),
    ],
)
def test_the_first_limit_reached_sets_the_length(limits, epochs, total):
    n = Length.of(limits, steps_per_epoch=10)
    assert (n.epochs, n.total_steps, n.cap) == (epochs, total, total)
    assert n.unbounded == (limits.epochs == limits.max_steps == 0)


def test_the_loop_asks_when_an_epoch_and_the_run_end():
    n = Length.of(Limits(max_steps=25), steps_per_epoch=10)
    assert n.ends_epoch(step=10, batch=10) and not n.ends_epoch(step=9, batch=9)
    assert n.ends_epoch(step=25, batch=5)  # the run's last step ends its epoch early
    assert not n.finished(step=24, epoch=2) and n.finished(step=25, epoch=2)
    by_epochs = Length.of(Limits(epochs=2), steps_per_epoch=10)
    assert by_epochs.finished(step=20, epoch=2)
    # Without epochs the step count alone ends a run: a larger max_steps on resume goes on.
    assert not Length.of(Limits(max_steps=40), 10).finished(step=25, epoch=3)


def test_a_budget_resizes_within_the_cap_and_says_what_stopped_the_run():
    n = Length.of(Limits(epochs=5, time_budget=60.0), steps_per_epoch=10)
    n.resize(23)
    assert (n.total_steps, n.epochs) == (23, 3)
    n.resize(1000)
    assert n.total_steps == 50  # never beyond what epochs allow
    assert n.stopped_by(step=23, budgeted=True) == "time budget"
    assert n.stopped_by(step=50, budgeted=True) == "epochs"
    assert Length.of(Limits(max_steps=25), 10).stopped_by(25, budgeted=False) == "max_steps"
    assert Length.of(Limits(epochs=2, max_steps=25), 10).stopped_by(20, False) == "epochs"
    n.load_state_dict({"epochs": 2, "total_steps": 17})
    assert n.state_dict() == {"epochs": 2, "total_steps": 17}


def test_a_layer_setting_one_length_key_clears_the_other():
    values = {"epochs": 0, "max_steps": 64_000}
    merge(values, {"epochs": 300})
    assert values == {"epochs": 300, "max_steps": 0}
    merge(values, {"max_steps": 5, "epochs": 2})  # both in one layer: both kept
    assert values == {"epochs": 2, "max_steps": 5}
    merge(values, {"lr": 0.1})
    assert values["max_steps"] == 5


def test_a_config_needs_a_limit():
    with pytest.raises(ConfigError, match="set max_steps or time_budget"):
        check_limits(Limits())
    check_limits(Limits(time_budget=1.0))
