"""The experiment runner: ordinary run directories, skipping finished runs, recording divergence."""

import importlib
import json

import pytest

from reslab.errors import UserError
from reslab.experiments import EXPERIMENTS, Budget, Experiment, RunSpec, run_experiment
from reslab.experiments import runner as runner_module
from reslab.run.config import to_toml
from reslab.run.directory import RunDir

TINY = Budget(
    "tiny",
    "cifar10-sample",
    1,
    dict(batch_size=64, val_split=100, max_steps=3, threads=2, check_every=1),
    (20,),
    0.2,
    "a few steps",
)


def _grid(budget):
    return [
        RunSpec("ok", dict(model="resnet20", lr=0.05), dict(kind="ok")),
        RunSpec(
            "diverges",
            dict(model="resnet20", lr=1e6, momentum=0.0, norm="none", schedule="constant"),
            dict(kind="bad"),
        ),
    ]


EXP = Experiment("tiny", "tiny", "tiny", _grid, lambda results, out: [])


@pytest.fixture(autouse=True)
def _data_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path_factory.getbasetemp() / "data"))


def test_grid_runs_then_skips_finished_runs(tmp_path, monkeypatch):
    results = run_experiment(EXP, TINY, tmp_path, seeds=2, log=lambda m: None)
    assert [r.record.name for r in results.runs] == ["ok-s0", "ok-s1", "diverges-s0", "diverges-s1"]
    ok, bad = results.select(kind="ok"), results.select(kind="bad")
    assert all(r.status == "done" and r.record.summary["steps"] == 3 for r in ok)
    assert all(r.status == "diverged" and r.diverged_at >= 1 for r in bad)
    status = json.loads((tmp_path / "runs" / "diverges-s0" / "status.json").read_text())
    assert "lower learning rate" in status["message"]
    assert not any(RunDir(r.record.path).probes.exists() for r in results.runs)  # no probe

    def must_not_train(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runner_module, "fit", must_not_train)
    again = run_experiment(EXP, TINY, tmp_path, seeds=2, log=lambda m: None)
    assert [r.status for r in again.runs] == [r.status for r in results.runs]


def test_an_interrupted_run_is_resumed(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        runner_module,
        "resume",
        lambda run_dir, overrides, quiet: calls.append((run_dir, overrides)),
    )
    run_dir = tmp_path / "runs" / "ok-s0"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"x")
    config = runner_module.run_config(_grid(TINY)[0], 0, TINY, "cifar10-sample").to_dict()
    (run_dir / "config.toml").write_text(to_toml(config))  # the run's own, as fit wrote it
    one = Experiment("one", "one", "one", lambda b: _grid(b)[:1], lambda r, o: [])
    run_experiment(one, TINY, tmp_path, log=lambda m: None)
    assert calls == [(run_dir, {})]  # in-process: the config's own thread count


def test_every_experiment_builds_a_unique_grid_at_every_budget():
    from reslab.experiments import BUDGETS
    from reslab.train import build_config

    for exp in EXPERIMENTS.values():
        for budget in BUDGETS.values():
            specs = exp.grid(budget)
            assert len({s.name for s in specs}) == len(specs) > 0
            for s in specs:  # every run's config is valid before anything trains
                build_config(budget.overrides, {"epochs": budget.epochs}, s.overrides)


@pytest.mark.slow
def test_parallel_runs_side_by_side_in_their_own_processes(tmp_path):
    logs = []
    results = run_experiment(EXP, TINY, tmp_path, seeds=1, log=logs.append, parallel=2)
    assert [r.status for r in results.runs] == ["done", "diverged"]
    assert results.runs[0].record.summary["steps"] == 3
    assert results.runs[1].diverged_at >= 1
    assert sum("started" in m for m in logs) == 2
    again = run_experiment(EXP, TINY, tmp_path, seeds=1, log=logs.append, parallel=2)
    assert "2 of 2 runs done; 0 to run" in logs[-1] or any("0 to run" in m for m in logs)
    assert [r.status for r in again.runs] == ["done", "diverged"]


@pytest.mark.slow
def test_a_user_error_in_a_worker_is_one_line_naming_the_run(tmp_path):
    def grid(budget):
        missing = f"folder:{tmp_path / 'no-such-images'}"  # valid config; fails when loaded
        return [_grid(budget)[0], RunSpec("missing-data", dict(model="resnet20", dataset=missing))]

    exp = Experiment("broken", "broken", "broken", grid, lambda results, out: [])
    with pytest.raises(UserError, match=r"^run missing-data-s0 failed: ") as e:
        run_experiment(exp, TINY, tmp_path, log=lambda m: None, parallel=2)
    assert "\n" not in str(e.value)
    assert (tmp_path / "runs" / "ok-s0" / "status.json").is_file()  # the run in flight finished
    assert not (tmp_path / "runs" / "missing-data-s0" / "status.json").exists()


def test_the_report_says_which_data_a_budget_ran_on():
    from reslab.experiments import BUDGETS
    from reslab.experiments.conduct import budget_text

    quick = BUDGETS["quick"]
    own = budget_text(quick, None)
    assert "4k-image sample" in own and "`cifar10-sample`" in own
    assert budget_text(quick, "cifar10-sample") == own
    other = budget_text(quick, "fashion-mnist")
    assert "run here on `fashion-mnist` instead of its own data set `cifar10-sample`" in other
    assert "5 epochs per run" in other and "its data and its time do not" in other


def test_the_hour_budget_sizes_each_experiment_on_its_own():
    from reslab.experiments import BUDGETS
    from reslab.experiments.runner import run_config

    hour = BUDGETS["hour"]
    degradation = EXPERIMENTS["degradation"].grid(hour)
    assert {s.overrides["model"] for s in degradation} == {
        "plain20_w8",
        "plain56_w8",
        "resnet20_w8",
        "resnet56_w8",
    }
    assert all("epochs" not in s.overrides for s in degradation)  # the budget's 5
    batchnorm = EXPERIMENTS["batchnorm"].grid(hour)
    assert {s.overrides["model"] for s in batchnorm} == {"small_cnn", "small_cnn_relu_bn"}
    config = run_config(batchnorm[-1], 1, hour, "cifar10")
    assert (config.epochs, config.seed, config.warmup_epochs, config.schedule) == (
        7,
        1,
        1,
        "cosine",
    )
    # --model still wins over the budget's network; other budgets keep the experiment's own
    assert EXPERIMENTS["batchnorm"].network(hour, "resnet20") == "resnet20"
    assert EXPERIMENTS["batchnorm"].network(BUDGETS["quick"]) == "small_cnn"  # hour's nets
    assert EXPERIMENTS["batchnorm"].network(BUDGETS["standard"]) == "resnet20"
    assert {s.overrides["model"] for s in EXPERIMENTS["degradation"].grid(BUDGETS["standard"])} == {
        f"{kind}{d}" for kind in ("plain", "resnet") for d in (20, 32, 44, 56)
    }
    placement = EXPERIMENTS["placement"].grid(hour)
    assert {run_config(s, 0, hour, "cifar10").epochs for s in placement} == {6}


def test_seeds_default_to_the_budgets(monkeypatch):
    conduct_module = importlib.import_module("reslab.experiments.conduct")  # not the function
    asked = []

    def stop(experiment, budget, out, dataset, seeds, **kwargs):
        asked.append(seeds)
        raise KeyboardInterrupt

    monkeypatch.setattr(conduct_module, "run_experiment", stop)
    for budget, seeds, expected in (("hour", None, 2), ("quick", None, 2), ("hour", 3, 3)):
        with pytest.raises(KeyboardInterrupt):
            conduct_module.conduct("degradation", budget, seeds=seeds, log=lambda m: None)
        assert asked.pop() == expected
    with pytest.raises(UserError, match="--seeds must be >= 1"):
        conduct_module.conduct("degradation", "hour", seeds=0)


def test_a_folder_stands_for_the_budgets_own_data_set():
    from reslab.experiments import BUDGETS
    from reslab.experiments.conduct import budget_text

    text = budget_text(BUDGETS["hour"], "folder:/data/cifar10", "batchnorm")
    assert "Data set `cifar10`, read from `folder:/data/cifar10`; 7 epochs per run" in text
    assert "5 epochs per run" in budget_text(BUDGETS["hour"], None, "degradation")


def test_the_command_runs_a_grid_and_reports_every_runs_time(tmp_path, monkeypatch, capsys):
    from reslab.cli import main
    from reslab.experiments import BUDGETS

    tiny = Budget("tiny", "cifar10-sample", 1, TINY.overrides, (20,), 0.2, "a few steps", seeds=2)
    monkeypatch.setitem(BUDGETS, "tiny", tiny)
    argv = ["experiment", "degradation", "--budget", "tiny", "--out", str(tmp_path)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("Deeper plain nets train worse: ") for line in lines)
    assert not any(line.startswith("Runs:") for line in lines)  # a table, not a verdict
    report = (tmp_path / "report.md").read_text()
    runs = report[report.index("## Runs") :]
    assert "4 runs, " in runs and "h of training in all" in runs
    for name in ("plain20-s0", "plain20-s1", "resnet20-s0", "resnet20-s1"):  # the budget's seeds
        assert f"| {name} | done | 3 |" in runs
    assert "**Verdict: .**" not in report
    assert f"Made by `reslab experiment degradation --budget tiny --out {tmp_path}`." in report


def test_more_seeds_go_to_the_runs_of_the_open_verdicts_alone(tmp_path, monkeypatch):
    from reslab.experiments import BUDGETS, conduct
    from reslab.experiments.analysis import INCONCLUSIVE, SUPPORTED
    from reslab.report.experiment import Section

    seen = []

    def analyze(results, out):
        seen.append(([r.record.name for r in results.runs], results.seeds))
        settled = len(results.select(kind="ok")) >= 3
        return [Section("claim", "c", SUPPORTED if settled else INCONCLUSIVE, "e",
                        open_runs=[] if settled else ["ok"])]  # fmt: skip

    other = RunSpec("other", dict(model="resnet20", lr=0.02), dict(kind="other"))
    tiny = Experiment("tiny", "tiny", "tiny", lambda b: [_grid(b)[0], other], analyze)
    monkeypatch.setitem(EXPERIMENTS, "tiny", tiny)
    monkeypatch.setitem(BUDGETS, "tiny", TINY)
    with pytest.raises(UserError, match="--more-seeds must exceed --seeds .2."):
        conduct("tiny", "tiny", tmp_path, seeds=2, more_seeds=2, log=lambda m: None)
    report = conduct("tiny", "tiny", tmp_path, seeds=2, more_seeds=3, log=lambda m: None)
    assert seen == [
        (["ok-s0", "ok-s1", "other-s0", "other-s1"], 2),
        (["ok-s0", "ok-s1", "ok-s2", "other-s0", "other-s1"], 2),  # other: decided, not re-run
    ]
    assert report.sections[0].verdict == SUPPORTED
    intro = report.markdown.read_text()
    assert "got 3 seeds in all for the runs they rest on (ok)" in intro
    with pytest.raises(UserError, match="no run named nope"):
        run_experiment(tiny, TINY, tmp_path, more={"nope": 3}, log=lambda m: None)


def test_a_dead_worker_is_reported_as_resumable(tmp_path):
    # Ctrl-C reaches the workers too and breaks their pool: the message must not read as a lost
    # run, since the runs in flight keep their checkpoints and the same command resumes them.
    from concurrent.futures.process import BrokenProcessPool

    error = runner_module._failure(BrokenProcessPool("gone"), tmp_path / "net-lr0.1-s0")
    assert isinstance(error, UserError) and "\n" not in str(error)
    assert str(error).startswith("run net-lr0.1-s0 stopped: its process died (interrupted")
    assert "run the same command again to go on" in str(error)


def test_a_run_directory_holding_another_run_is_refused_before_anything_trains(tmp_path):
    from reslab.experiments.runner import check_same_run, run_config

    spec, run_dir = _grid(TINY)[0], tmp_path / "runs" / "ok-s0"
    run_dir.mkdir(parents=True)
    config = run_config(spec, 0, TINY, "cifar10-sample", threads=1).to_dict()
    moved = {**config, "data_dir": "/moved/data", "checkpoint_every": 60.0, "device": "cpu"}
    RunDir(run_dir).config.write_text(to_toml(moved))
    check_same_run(spec, 0, TINY, "cifar10-sample", run_dir)  # where and how: the same run
    legacy = {k: v for k, v in config.items() if k != "shortcut_pad"}  # read as "after"
    RunDir(run_dir).config.write_text(to_toml(legacy))
    with pytest.raises(UserError, match="shortcut_pad = 'after' .asked: 'both'."):
        check_same_run(spec, 0, TINY, "cifar10-sample", run_dir)
    RunDir(run_dir).config.write_text(to_toml(config))
    (run_dir / "status.json").write_text(json.dumps({"status": "done"}))  # and finished
    longer = Budget("tiny", "cifar10-sample", 1, {**TINY.overrides, "max_steps": 5}, (20,), 0.2, "")
    with pytest.raises(UserError) as e:
        run_experiment(EXP, longer, tmp_path, log=lambda m: None)
    assert "holds another run than this grid asks for: max_steps = 3 (asked: 5)" in str(e.value)
    assert "give another --out" in str(e.value)
    assert not (tmp_path / "runs" / "diverges-s0").exists()  # refused before anything trained
    RunDir(run_dir).config.write_text("epochs = [")
    with pytest.raises(UserError, match="is not valid TOML"):  # ConfigError is a UserError
        check_same_run(spec, 0, TINY, "cifar10-sample", run_dir)


def test_epochs_runs_the_grid_longer_and_the_report_says_so(monkeypatch):
    from reslab.cli import _experiment_command, _parse
    from reslab.experiments import BUDGETS
    from reslab.experiments.conduct import budget_text, default_out
    from reslab.experiments.runner import run_config

    conduct_module = importlib.import_module("reslab.experiments.conduct")  # not the function
    asked = []

    def stop(experiment, budget, *args, **kwargs):
        asked.append(budget)
        raise KeyboardInterrupt

    monkeypatch.setattr(conduct_module, "run_experiment", stop)
    with pytest.raises(KeyboardInterrupt):
        conduct_module.conduct("degradation", "hour", epochs=12, log=lambda m: None)
    grid = EXPERIMENTS["degradation"].grid(asked.pop())
    assert {run_config(s, 0, BUDGETS["hour"], "cifar10").epochs for s in grid} == {12}
    assert BUDGETS["hour"].epochs_of("degradation") == 5  # the budget itself is unchanged
    text = budget_text(BUDGETS["hour"], "folder:/d", "degradation", 12)
    assert text.endswith(
        "; 12 epochs per run (asked with --epochs instead of the budget's 5, so the budget's time "
        "does not hold)."
    )
    other = budget_text(BUDGETS["hour"], "fashion-mnist", "degradation", 12)
    assert other.endswith(
        ": its settings, for 12 epochs per run (asked with --epochs instead of the budget's 5), "
        "apply; its data and its time do not."
    )
    assert default_out("degradation", "hour", 12).name == "degradation-hour-12epochs"
    assert default_out("degradation", "hour").name == "degradation-hour"
    assert budget_text(BUDGETS["hour"], None, "placement", 6).endswith("; 6 epochs per run.")
    with pytest.raises(UserError, match="gradients trains a fixed number of steps"):
        conduct_module.conduct("gradients", "hour", epochs=3, log=lambda m: None)
    args = _parse(["experiment", "degradation", "--budget", "hour", "--epochs", "12"])
    assert _experiment_command(args) == "reslab experiment degradation --budget hour --epochs 12"
