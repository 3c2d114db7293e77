"""Run an experiment's grid: each run an ordinary run directory; finished runs are skipped,
interrupted ones resumed, diverged ones recorded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reslab.errors import DivergenceError
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.io import atomic_write_json
from reslab.report.runs import RunRecord, load_run
from reslab.train import build_config, resume, train


@dataclass
class RunResult:
    spec: RunSpec
    seed: int
    record: RunRecord
    status: str  # "done" or "diverged"
    diverged_at: int | None = None


@dataclass
class ExperimentResults:
    experiment: Experiment
    budget: Budget
    out: Path
    runs: list[RunResult]

    def select(self, **group) -> list[RunResult]:
        return [r for r in self.runs if all(r.spec.group.get(k) == v for k, v in group.items())]


def _status_file(run_dir: Path) -> Path:
    return run_dir / "status.json"


def run_one(
    spec: RunSpec, seed: int, budget: Budget, dataset: str, run_dir: Path, quiet: bool
) -> RunResult:
    status_file = _status_file(run_dir)
    if not status_file.is_file():
        # One layer for the budget, so a budget that gives both epochs and max_steps keeps both.
        budget_layer = {"epochs": budget.epochs, **budget.overrides, "dataset": dataset}
        config = build_config(budget_layer, spec.overrides, {"seed": seed})
        try:
            if (run_dir / "checkpoints" / "last.pt").is_file():
                resume(run_dir, quiet=quiet)
            else:
                train(config, run_dir, force=True, quiet=quiet)
            status = {"status": "done"}
        except DivergenceError as e:
            status = {"status": "diverged", "message": str(e), "diverged_at": _step_of(str(e))}
        atomic_write_json(status_file, status)
    status = json.loads(status_file.read_text())
    return RunResult(spec, seed, load_run(run_dir), status["status"], status.get("diverged_at"))


def _step_of(message: str) -> int | None:
    import re

    m = re.search(r"at step (\d+)", message)
    return int(m.group(1)) if m else None


def run_experiment(
    experiment: Experiment,
    budget: Budget,
    out: Path,
    dataset: str | None = None,
    seeds: int = 1,
    quiet: bool = True,
    log=print,
) -> ExperimentResults:
    dataset = dataset or budget.dataset
    specs = experiment.runs(budget)
    names = [s.name for s in specs]
    assert len(set(names)) == len(names), f"duplicate run names in {experiment.name}"
    results = []
    total = len(specs) * seeds
    for i, (spec, seed) in enumerate(((s, k) for s in specs for k in range(seeds)), 1):
        run_dir = out / "runs" / f"{spec.name}-s{seed}"
        done = _status_file(run_dir).is_file()
        log(f"[{i}/{total}] {run_dir.name}{' (done, skipped)' if done else ''}")
        results.append(run_one(spec, seed, budget, dataset, run_dir, quiet))
    return ExperimentResults(experiment, budget, out, results)
