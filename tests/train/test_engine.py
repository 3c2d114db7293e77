"""The training loop on the shipped sample: run directory, resume, stop, divergence."""

import json
import time

import pytest
import torch

from reslab.errors import ConfigError, DivergenceError, UserError
from reslab.infer import load
from reslab.metrics import untouched
from reslab.run.checkpoint import load_checkpoint, save_checkpoint
from reslab.train import build_config, engine, fit, resume
from reslab.train.stop import StopRequested
from tests.conftest import tiny_settings

# 3,800 training images in batches of 64: 59 steps an epoch; each test cuts the run with max_steps.
ENGINE = dict(epochs=2, batch_size=64, val_split=200, lr=0.05, schedule="cosine", check_every=7)


@pytest.fixture
def tiny(tiny_config):
    """(max_steps, **overrides) -> a config of ENGINE cut at max_steps, on the shared data dir."""

    def make(max_steps, **overrides):
        return tiny_config(**{**ENGINE, "max_steps": max_steps, **overrides})

    return make


def test_run_directory_holds_everything(tmp_path, tiny):
    config = tiny(30)
    result = fit(config, tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    for name in (
        "config.toml",
        "metrics.jsonl",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "model.safetensors",
        "summary.json",
    ):
        assert (run / name).is_file(), name
    rows = _rows(run)
    # max_steps (30) ends the run inside the first epoch (59 steps): one row, for that part epoch.
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 30)]
    for key in (
        "epoch",
        "step",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "epoch_time_s",
        "images_per_s",
    ):
        assert key in rows[0]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 30 and 0 <= summary["test_acc"] <= 1
    assert summary["params"] == 924_074 and result.summary == summary
    assert not result.model.training  # returned ready to evaluate, as documented
    loaded = load(run)
    assert loaded.data["classes"][0] == "airplane"
    x = torch.zeros(1, 3, 32, 32)
    torch.testing.assert_close(loaded.model(x), result.model.eval()(x))


def test_existing_run_dir_is_not_overwritten(tmp_path, tiny):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="--resume"):
        fit(tiny(2), tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "keep.txt").read_text() == "x"


def test_batch_larger_than_split_fails_before_training(tmp_path, tiny):
    with pytest.raises(ConfigError, match="larger than the training split"):
        fit(tiny(2, batch_size=100_000), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, tiny):
    config = tiny(24, deterministic=True, ema=0.9)
    straight = fit(config, tmp_path / "straight", quiet=True)
    with pytest.raises(StopRequested, match="--resume"):
        fit(config, tmp_path / "split", quiet=True, should_stop=lambda step: step == 9)
    state = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert state["position"]["step"] == 9
    resumed = resume(tmp_path / "split", quiet=True)
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed.summary["test_acc"] == straight.summary["test_acc"]
    split, straight = _rows(tmp_path / "split"), _rows(tmp_path / "straight")
    # Wall-clock fields differ between any two runs; every other field must match exactly.
    clock = ("epoch_time_s", "images_per_s")
    assert [r["step"] for r in straight] == [24]
    assert [_without(r, clock) for r in split] == [_without(r, clock) for r in straight]


def test_muon_lowers_the_loss_and_resumes_exactly(tmp_path, tiny):
    config = tiny(30, deterministic=True, optimizer="muon")
    (start,) = _rows(fit(tiny(1, optimizer="muon"), tmp_path / "step", quiet=True).run_dir)
    straight = fit(config, tmp_path / "straight", quiet=True)
    (end,) = _rows(tmp_path / "straight")
    assert end["val_loss"] < start["val_loss"] - 0.2, (start, end)
    with pytest.raises(StopRequested):
        fit(config, tmp_path / "split", quiet=True, should_stop=lambda step: step == 11)
    resumed = resume(tmp_path / "split", quiet=True)
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def _rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _without(row: dict, keys) -> dict:
    return {k: v for k, v in row.items() if k not in keys}


def test_resume_rejects_changed_settings(tmp_path, tiny):
    fit(tiny(3), tmp_path / "run", quiet=True)
    with pytest.raises(ConfigError, match="cannot change lr"):
        resume(tmp_path / "run", {"lr": 0.3}, quiet=True)
    with pytest.raises(UserError, match="nothing to resume"):
        resume(tmp_path / "elsewhere", quiet=True)


def test_resume_on_another_device_type_says_it_is_not_bit_identical(tmp_path, tiny, caplog):
    fit(tiny(3, device="cpu"), tmp_path / "run", quiet=True)  # on the CPU where CUDA is too
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    assert state["device"] == "cpu"
    with caplog.at_level("INFO", logger="reslab.train"):
        resume(tmp_path / "run", {"max_steps": 4}, quiet=True)  # written on cpu, resumed on cpu
    assert "not bit-identical" not in caplog.text
    save_checkpoint(last, {**load_checkpoint(last), "device": "cuda"})  # as if written on a GPU
    with caplog.at_level("INFO", logger="reslab.train"):
        result = resume(tmp_path / "run", {"max_steps": 5}, quiet=True)
    assert "written on cuda and the run continues on cpu" in caplog.text
    assert "not bit-identical" in caplog.text and result.summary["steps"] == 5


def test_divergence_names_the_step_and_keeps_the_last_checkpoint(tmp_path, tiny):
    config = tiny(200, lr=1e6, schedule="constant", momentum=0.0, epochs=3)
    with pytest.raises(DivergenceError, match=r"at step \d+.*lower learning rate"):
        fit(config, tmp_path / "run", quiet=True)


# Each recipe with its own network: the default suite runs three kinds (a step schedule, one-cycle,
# a time budget); the rest, ResNet-9 and ResNet-18 among them, run with the slow tests.
SLOW_RECIPES = ("cosine", "cifar-onecycle", "fast", "tutorial-resnet18")


@pytest.mark.parametrize(
    "recipe",
    ["he2015-cifar", "demo", "cpu-budget",
     *(pytest.param(r, marks=pytest.mark.slow) for r in SLOW_RECIPES)],
)  # fmt: skip
def test_every_recipe_runs_on_the_sample(tmp_path, data_dir, recipe):
    from reslab.train.recipes import RECIPES, get_recipe

    assert len(RECIPES) == 7  # a new recipe joins this list
    tiny_run = tiny_settings(max_steps=2, data_dir=str(data_dir), model=None, time_budget=None)
    config = build_config(get_recipe(recipe).overrides, tiny_run)
    result = fit(config, tmp_path / recipe, quiet=True)
    assert result.summary["steps"] == 2 and 0 <= result.summary["test_acc"] <= 1


class Crash(Exception):
    """A stand-in for a SIGKILL: nothing of the run's own handling runs after it."""


def test_time_based_checkpoints_inside_the_epoch_resume_exactly(tmp_path, tiny):
    config = tiny(24, deterministic=True, check_every=1)
    straight = fit(config, tmp_path / "straight", quiet=True)

    def crash(step):
        if step == 14:
            raise Crash
        return False

    every_check = build_config({**config.to_dict(), "checkpoint_every": 1e-9})
    with pytest.raises(Crash):
        fit(every_check, tmp_path / "split", quiet=True, should_stop=crash)
    state = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    # Saved mid-epoch by the clock (epoch 1 has 59 steps), at the check point before the crash.
    assert state["position"]["epoch"] == 0 and state["position"]["step"] == 13
    resumed = resume(tmp_path / "split", quiet=True)
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_resume_before_the_first_checkpoint_starts_over(tmp_path, tiny):
    with pytest.raises(Crash):
        fit(tiny(6), tmp_path / "run", quiet=True, should_stop=lambda step: _raise(Crash))
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    result = resume(tmp_path / "run", quiet=True)
    assert result.summary["steps"] == 6 and not result.finished_before


def test_resume_of_a_finished_run_changes_nothing(tmp_path, tiny):
    first = fit(tiny(3), tmp_path / "run", quiet=True)
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*") if p.is_file()}
    again = resume(tmp_path / "run", quiet=True)
    assert again.finished_before and again.summary == first.summary
    assert {p: p.stat().st_mtime_ns for p in files} == files
    x = torch.zeros(1, 3, 32, 32)
    torch.testing.assert_close(again.model(x), first.model.eval()(x))
    longer = resume(tmp_path / "run", {"epochs": 2}, quiet=True)  # extended, not finished
    assert not longer.finished_before and longer.summary["epochs"] == 2


def test_a_run_cut_mid_epoch_by_max_steps_goes_on_with_a_larger_one(tmp_path, tiny):
    first = fit(tiny(3), tmp_path / "run", quiet=True)  # 3 steps of a 59-step epoch
    assert first.summary["steps"] == 3
    more = resume(tmp_path / "run", {"max_steps": 5}, quiet=True)
    assert not more.finished_before and more.summary["steps"] == 5
    assert [row["step"] for row in _rows(tmp_path / "run")] == [3, 5]


def _raise(error):
    raise error


class EveryFifthStep:
    """A probe as an experiment's: a forward pass in training mode (which would move BN's
    statistics) on a model it leaves as it found it."""

    def __init__(self):
        self.steps, self.totals = [], set()

    def due(self, step, total_steps):
        self.totals.add(total_steps)
        return step % 5 == 0

    def measure(self, model, step):
        with untouched(model):
            model(torch.randn(4, 3, 32, 32))
        self.steps.append(step)


def test_a_probed_run_is_measured_when_due_and_trains_as_an_unprobed_one(tmp_path, tiny):
    config = tiny(12, deterministic=True)
    probe = EveryFifthStep()
    probed = fit(config, tmp_path / "probed", quiet=True, probe=probe)
    assert probe.steps == [0, 5, 10] and probe.totals == {12}  # the start, then when due
    # Unprobed up to a stop at step 7 (its resume is bit-identical), probed after it.
    with pytest.raises(StopRequested):
        fit(config, tmp_path / "split", quiet=True, should_stop=lambda step: step == 7)
    again = EveryFifthStep()
    unprobed = resume(tmp_path / "split", quiet=True, probe=again)
    assert again.steps == [10]  # from the checkpoint's step on
    for (name, a), b in zip(
        probed.model.state_dict().items(), unprobed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_a_probe_takes_none_of_the_training_time(tmp_path, tiny, monkeypatch):
    """Measuring is not training: a probe that takes an hour by the loop's clock leaves the
    epoch's time and the run's training time short of it."""
    taken = [0.0]
    monkeypatch.setattr(engine, "clock", lambda: time.perf_counter() + taken[0])

    class AnHour:
        def due(self, step, total_steps):
            return step % 5 == 0

        def measure(self, model, step):
            taken[0] += 3600.0

    fit(tiny(12), tmp_path / "run", quiet=True, probe=AnHour())
    assert taken[0] == 3 * 3600.0  # steps 0, 5 and 10
    assert sum(row["epoch_time_s"] for row in _rows(tmp_path / "run")) < 3600.0
    position = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["position"]
    assert position["wall_time_s"] < 3600.0


def test_timing_an_evaluation_reads_no_data_and_changes_nothing(tiny):
    from reslab.train.setup import build

    s = build(tiny(4, tta=True, tta_shift=1))
    s.model.train()
    weights = {k: v.clone() for k, v in s.model.state_dict().items()}
    rng = torch.get_rng_state()
    seconds, images = engine.time_evaluation(s, images=8)
    assert seconds > 0 and images == 8
    assert s.model.training and torch.equal(torch.get_rng_state(), rng)
    for name, value in s.model.state_dict().items():
        assert torch.equal(value, weights[name]), name  # BN's running statistics too
    # By default one batch as the test pass runs it: the loader's, or the whole split if smaller.
    assert s.test_loader.batch_size == 500 and s.test_loader.num_samples == 1000
    assert engine.time_evaluation(s)[1] == 500


def test_a_whitening_first_layer_is_fitted_to_the_training_images_and_stays_frozen(tmp_path, tiny):
    from reslab.data import DeviceLoader, holdout, load_dataset
    from reslab.nn import PatchWhitening

    config = tiny(6, model="resnet9_w16_whiten")
    result = fit(config, tmp_path / "run", quiet=True)
    (layer,) = [m for m in result.model.modules() if isinstance(m, PatchWhitening)]
    # The filters a fresh layer gets from the run's training images (the first 5,000 or all).
    data = load_dataset(config.dataset, config.data_dir)
    train, _ = holdout(data, config.val_split, config.seed)
    x, _ = next(iter(DeviceLoader(train, batch_size=len(train), mean=data.mean, std=data.std,
                                  train=False)))  # fmt: skip
    expected = PatchWhitening(3).fit_(x[:5000]).weight
    torch.testing.assert_close(layer.weight, expected)  # fitted before step 1, never stepped
    assert layer.bias.abs().sum() > 0  # the bias trains


def test_progressive_resizing_trains_on_smaller_images_first_and_resumes_exactly(
    tmp_path, tiny, monkeypatch
):
    seen = []
    step = engine.train_step
    record = lambda s, x, y: seen.append(x.shape[-1]) or step(s, x, y)  # noqa: E731
    monkeypatch.setattr(engine, "train_step", record)
    config = tiny(12, deterministic=True, progressive=[16, 24], model="resnet9_w16")
    straight = fit(config, tmp_path / "straight", quiet=True)
    assert seen == [16] * 4 + [24] * 4 + [32] * 4  # thirds of 12 steps; evaluation not counted
    seen.clear()
    with pytest.raises(StopRequested):
        fit(config, tmp_path / "split", quiet=True, should_stop=lambda step: step == 5)
    resumed = resume(tmp_path / "split", quiet=True)
    assert seen == [16] * 4 + [24] * 1 + [24] * 3 + [32] * 4
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("sizes", "model", "message"),
    [([16, 32], "resnet20", "below the images' own size .32 px."),
     ([4], "vgg11_w8", "does not take 4 px images")],
)  # fmt: skip
def test_progressive_sizes_the_data_or_network_cannot_take_fail_before_training(
    tmp_path, tiny, sizes, model, message
):
    with pytest.raises(ConfigError, match=message):
        fit(tiny(2, progressive=sizes, model=model), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()
