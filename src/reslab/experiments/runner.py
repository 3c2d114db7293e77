"""Run an experiment's grid: each run an ordinary run directory; finished runs are skipped,
interrupted ones resumed, diverged ones recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from reslab.errors import DivergenceError, UserError
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.io import atomic_write_json, atomic_write_text
from reslab.report.runs import RunRecord, load_run
from reslab.train import build_config, resume, train
from reslab.train.config import to_toml


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


def run_config(spec: RunSpec, seed: int, budget: Budget, dataset: str):
    # One layer for the budget, so a budget that gives both epochs and max_steps keeps both.
    budget_layer = {"epochs": budget.epochs, **budget.overrides, "dataset": dataset}
    return build_config(budget_layer, spec.overrides, {"seed": seed})


def _result(spec: RunSpec, seed: int, run_dir: Path) -> RunResult:
    status = json.loads(_status_file(run_dir).read_text())
    return RunResult(spec, seed, load_run(run_dir), status["status"], status.get("diverged_at"))


def run_one(
    spec: RunSpec, seed: int, budget: Budget, dataset: str, run_dir: Path, quiet: bool
) -> RunResult:
    status_file = _status_file(run_dir)
    if not status_file.is_file():
        config = run_config(spec, seed, budget, dataset)
        try:
            if (run_dir / "checkpoints" / "last.pt").is_file():
                resume(run_dir, quiet=quiet)
            else:
                train(config, run_dir, force=True, quiet=quiet)
            status = {"status": "done"}
        except DivergenceError as e:
            status = {"status": "diverged", "message": str(e), "diverged_at": _step_of(str(e))}
        atomic_write_json(status_file, status)
    return _result(spec, seed, run_dir)


def _launch(config, run_dir: Path, slot: int, parallel: int) -> subprocess.Popen:
    """One run as its own `reslab train` process: GPU `slot` when there are GPUs, else a share
    of the CPU cores."""
    env = dict(os.environ)
    if torch.cuda.is_available():
        env["CUDA_VISIBLE_DEVICES"] = str(slot % torch.cuda.device_count())
    threads = max(1, (os.cpu_count() or 1) // parallel)
    if (run_dir / "checkpoints" / "last.pt").is_file():
        args = ["--resume", str(run_dir), "--threads", str(threads)]
    else:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        toml = run_dir.parent / f".{run_dir.name}.toml"
        atomic_write_text(toml, to_toml({**config.to_dict(), "threads": threads}))
        args = ["--config", str(toml), "--out", str(run_dir), "--force"]
    return subprocess.Popen(
        [sys.executable, "-m", "reslab", "train", "--quiet", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _finish(proc: subprocess.Popen, run_dir: Path) -> None:
    err = proc.communicate()[1].strip()
    if proc.returncode == 0:
        status = {"status": "done"}
    elif proc.returncode == DivergenceError.exit_code:
        message = err.removeprefix("error: ")
        status = {"status": "diverged", "message": message, "diverged_at": _step_of(message)}
    else:
        raise UserError(
            f"run {run_dir.name} failed (exit {proc.returncode}): "
            f"{err.splitlines()[-1] if err else 'no message'}"
        )
    atomic_write_json(_status_file(run_dir), status)


def run_parallel(jobs: list[tuple], parallel: int, log) -> None:
    """Run (config, run_dir) jobs `parallel` at a time, each in its own process."""
    pending, running, free = list(jobs), [], list(range(parallel))
    while pending or running:
        while pending and free:
            config, run_dir = pending.pop(0)
            slot = free.pop(0)
            log(f"started {run_dir.name} (slot {slot})")
            running.append((_launch(config, run_dir, slot, parallel), run_dir, slot))
        time.sleep(0.5)
        for item in [r for r in running if r[0].poll() is not None]:
            running.remove(item)
            proc, run_dir, slot = item
            _finish(proc, run_dir)
            free.append(slot)
            log(f"finished {run_dir.name}")


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
    parallel: int = 1,
) -> ExperimentResults:
    dataset = dataset or budget.dataset
    specs = experiment.runs(budget)
    names = [s.name for s in specs]
    assert len(set(names)) == len(names), f"duplicate run names in {experiment.name}"
    grid = [(s, k, out / "runs" / f"{s.name}-s{k}") for s in specs for k in range(seeds)]
    if parallel > 1:
        todo = [
            (run_config(s, k, budget, dataset), d)
            for s, k, d in grid
            if not _status_file(d).is_file()
        ]
        log(
            f"{len(grid) - len(todo)} of {len(grid)} runs done; {len(todo)} to run, "
            f"{parallel} at a time"
        )
        run_parallel(todo, parallel, log)
        return ExperimentResults(experiment, budget, out, [_result(s, k, d) for s, k, d in grid])
    results = []
    for i, (spec, seed, run_dir) in enumerate(grid, 1):
        done = _status_file(run_dir).is_file()
        log(f"[{i}/{len(grid)}] {run_dir.name}{' (done, skipped)' if done else ''}")
        results.append(run_one(spec, seed, budget, dataset, run_dir, quiet))
    return ExperimentResults(experiment, budget, out, results)
