"""Run an experiment's grid: each run an ordinary run directory; finished runs are skipped,
interrupted ones resumed, diverged ones recorded. One function runs one grid cell, in this
process or, side by side, in worker processes."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch

from reslab.errors import DivergenceError, UserError
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.io import atomic_write_json
from reslab.report.runs import RunRecord, load_run
from reslab.run.config import build_config, read_toml, saved_config
from reslab.run.directory import RunDir
from reslab.run.length import LIMITS
from reslab.train import fit, resume
from reslab.train.session import RESUME_OVERRIDABLE


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
    model: str | None = None  # the network, for experiments that take one
    # The seeds every run of the grid has (0: all it has); runs given more seeds than that
    # (`--more-seeds`) have the rest. A choice between runs (a learning rate) is made on these
    # alone, so the seeds added after it cannot move it.
    seeds: int = 0

    def select(self, **group) -> list[RunResult]:
        return [r for r in self.runs if all(r.spec.group.get(k) == v for k, v in group.items())]

    def shared(self, **group) -> list[RunResult]:
        """select(**group), of the seeds every run has: what a choice is made on."""
        return [r for r in self.select(**group) if not self.seeds or r.seed < self.seeds]


def _status_file(run_dir: Path) -> Path:
    return RunDir(run_dir).status


def run_config(spec: RunSpec, seed: int, budget: Budget, dataset: str, threads: int = 0):
    """The run's config; `threads` (0: the budget's or the run's own) is its CPU thread share."""
    # One layer for the budget, so a budget that gives both epochs and max_steps keeps both.
    budget_layer = {"epochs": budget.epochs, **budget.overrides, "dataset": dataset}
    return build_config(budget_layer, spec.overrides, {"seed": seed, **_threads(threads)})


# What says where and how a run goes, not what it learns (what a resume may change but its
# length, and where its data lives): a run made with other values of these is still the run
# the grid asks for.
_PLACE = (*(k for k in RESUME_OVERRIDABLE if k not in LIMITS), "data_dir")


def check_same_run(spec: RunSpec, seed: int, budget: Budget, dataset: str, run_dir: Path) -> None:
    """A run directory already there, finished or not, must hold the run this grid asks for
    (say a grid asked again with another --epochs into the same --out): else a UserError
    naming the keys that differ, rather than a report computed from other runs. The saved
    config is read as a resume reads it (keys older runs lack take the meaning they had)."""
    file = RunDir(run_dir).config
    if not file.is_file():
        return
    saved = saved_config(read_toml(file)).to_dict()  # a ConfigError if it does not parse
    wanted = run_config(spec, seed, budget, dataset).to_dict()
    differ = [k for k, v in wanted.items() if k not in _PLACE and saved[k] != v]
    if differ:
        said = ", ".join(f"{k} = {saved[k]!r} (asked: {wanted[k]!r})" for k in differ)
        raise UserError(
            f"{run_dir} holds another run than this grid asks for: {said}; give another --out, "
            "or delete that run directory to train it again"
        )


def _threads(threads: int) -> dict:
    return {"threads": threads} if threads else {}


def _result(spec: RunSpec, seed: int, run_dir: Path) -> RunResult:
    status = json.loads(_status_file(run_dir).read_text())
    return RunResult(spec, seed, load_run(run_dir), status["status"], status.get("diverged_at"))


def _train_or_resume(
    spec: RunSpec, seed: int, budget: Budget, dataset: str, run_dir: Path, quiet: bool, threads: int
) -> dict:
    """Train the run, or resume it from its last checkpoint; how it ended, for status.json."""
    config = run_config(spec, seed, budget, dataset, threads)
    probed = {"probe": spec.probe.start(config, run_dir)} if spec.probe else {}
    try:
        if RunDir(run_dir).last.is_file():
            resume(run_dir, _threads(threads), quiet=quiet, **probed)
        else:
            fit(config, run_dir, force=True, quiet=quiet, **probed)
    except DivergenceError as e:
        return {"status": "diverged", "message": str(e), "diverged_at": e.step}
    return {"status": "done"}


def run_one(
    spec: RunSpec,
    seed: int,
    budget: Budget,
    dataset: str,
    run_dir: Path,
    quiet: bool = True,
    threads: int = 0,
) -> RunResult:
    """One grid cell, in this process or a worker's: trained or resumed unless its status.json
    says it has ended, then recorded there. `threads` (0: the config's) is its CPU share."""
    if not _status_file(run_dir).is_file():
        status = _train_or_resume(spec, seed, budget, dataset, run_dir, quiet, threads)
        atomic_write_json(_status_file(run_dir), status)
    return _result(spec, seed, run_dir)


def _gpus() -> list[str]:
    """The GPUs to spread workers over, as CUDA_VISIBLE_DEVICES entries; none without CUDA."""
    if not torch.cuda.is_available():
        return []
    count, visible = torch.cuda.device_count(), os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:  # stay inside the user's choice: slot k gets the k-th GPU it lists
        return [d.strip() for d in visible.split(",")][:count]
    return [str(i) for i in range(count)]


def _start_worker(gpu: str | None, threads: int) -> None:
    """A worker's share of the machine, set before anything in it touches CUDA."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    torch.set_num_threads(threads)


def _failure(error: BaseException, run_dir: Path) -> BaseException:
    """What a worker's error becomes here: one line naming the run for what a user can fix."""
    if isinstance(error, UserError):
        return UserError(f"run {run_dir.name} failed: {error}")
    if isinstance(error, BrokenProcessPool):
        return UserError(
            f"run {run_dir.name} stopped: its process died (interrupted with Ctrl-C, killed, or "
            "out of memory); finished runs are kept and the runs in flight keep their last "
            "checkpoint: run the same command again to go on"
        )
    return error  # an internal bug: raised with the worker's traceback as its cause


def run_parallel(jobs: list[tuple], parallel: int, log) -> None:
    """Run `run_one` on each job (its arguments up to the run directory), `parallel` at a time.
    Slot k is one worker process with GPU k (mod the GPUs) when there are GPUs and an equal
    share of the CPU cores. On a failure no new run starts; the runs in flight finish (and
    record their status) before the error is raised. Workers are spawned, so a script that
    calls this needs the usual `if __name__ == "__main__":` guard (the CLI has it)."""
    threads = max(1, (os.cpu_count() or 1) // parallel)
    pending, free, running = list(jobs), list(range(parallel)), {}
    with ExitStack() as stack:  # on leaving, waits for the runs in flight
        workers = [stack.enter_context(w) for w in _workers(parallel, threads)]
        while pending or running:
            while pending and free:
                job, slot = pending.pop(0), free.pop(0)
                log(f"started {job[-1].name} (slot {slot})")
                future = workers[slot].submit(run_one, *job, quiet=True, threads=threads)
                running[future] = slot, job[-1]
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                slot, run_dir = running.pop(future)
                if future.exception() is not None:
                    log(f"{run_dir.name} failed; waiting for the {len(running)} run(s) in flight")
                    raise _failure(future.exception(), run_dir)
                free.append(slot)
                log(f"finished {run_dir.name}")


def _workers(parallel: int, threads: int) -> list[ProcessPoolExecutor]:
    """One single-process pool per slot, so each slot keeps its GPU. Spawned, not forked: a
    forked child would inherit this process's CUDA state, which CUDA does not support."""
    spawn, gpus = multiprocessing.get_context("spawn"), _gpus()
    slot_gpus = [gpus[k % len(gpus)] if gpus else None for k in range(parallel)]
    return [ProcessPoolExecutor(1, spawn, _start_worker, (gpu, threads)) for gpu in slot_gpus]


def run_experiment(
    experiment: Experiment,
    budget: Budget,
    out: Path,
    dataset: str | None = None,
    seeds: int = 1,
    quiet: bool = True,
    log=print,
    parallel: int = 1,
    model: str | None = None,
    data_dir: str = "",
    more: Mapping[str, int] | None = None,
) -> ExperimentResults:
    """Run the grid (skipping finished runs, resuming interrupted ones). `model` replaces the
    network of an experiment that takes one; `data_dir` is where its data set lives; `more`
    gives some runs, by grid name, more seeds than `seeds`."""
    more = more or {}
    dataset = dataset or budget.dataset
    if data_dir:  # every run reads its data set from there
        budget = dataclasses.replace(budget, overrides={**budget.overrides, "data_dir": data_dir})
    specs = experiment.grid(budget, model)
    model = experiment.network(budget, model)
    names = [s.name for s in specs]
    assert len(set(names)) == len(names), f"duplicate run names in {experiment.name}"
    unknown = sorted(set(more) - set(names))
    if unknown:
        raise UserError(f"no run named {', '.join(unknown)} in {experiment.name}'s grid")
    grid = [(s, k, out / "runs" / f"{s.name}-s{k}") for s in specs
            for k in range(max(seeds, s.seeds, more.get(s.name, 0)))]  # fmt: skip
    common = min((max(seeds, s.seeds) for s in specs), default=seeds)
    for s, k, d in grid:  # before anything trains
        check_same_run(s, k, budget, dataset, d)
    if parallel > 1:
        todo = [(s, k, budget, dataset, d) for s, k, d in grid if not _status_file(d).is_file()]
        for spec, seed, *_ in todo:  # every config valid here, before any worker starts
            run_config(spec, seed, budget, dataset)
        log(
            f"{len(grid) - len(todo)} of {len(grid)} runs done; {len(todo)} to run, "
            f"{parallel} at a time"
        )
        run_parallel(todo, parallel, log)
        done = [_result(s, k, d) for s, k, d in grid]
        return ExperimentResults(experiment, budget, out, done, model, common)
    results = []
    for i, (spec, seed, run_dir) in enumerate(grid, 1):
        done = _status_file(run_dir).is_file()
        log(f"[{i}/{len(grid)}] {run_dir.name}{' (done, skipped)' if done else ''}")
        results.append(run_one(spec, seed, budget, dataset, run_dir, quiet))
    return ExperimentResults(experiment, budget, out, results, model, common)
