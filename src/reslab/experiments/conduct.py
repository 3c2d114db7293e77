"""An experiment by name, start to finish: run its grid, analyze it, write its report. This is
what `reslab experiment` does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reslab.errors import UserError
from reslab.experiments.runner import run_experiment
from reslab.experiments.spec import Budget, get_budget
from reslab.report.experiment import Section, write_experiment_report


@dataclass
class ExperimentReport:
    """The verdicts of one experiment and where its report was written."""

    sections: list[Section]
    markdown: Path  # report.md; report.html sits beside it
    html: Path


def default_out(name: str, budget: str) -> Path:
    return Path(f"runs/experiments/{name}-{budget}")


def budget_text(spec: Budget, dataset: str | None) -> str:
    """The report's sentence on the budget. Its note describes the budget's own data and time,
    so a run on another data set says which parts still hold."""
    if dataset and dataset != spec.dataset:
        return (
            f"Budget `{spec.name}` ({spec.note}), run here on `{dataset}` instead of its own "
            f"data set `{spec.dataset}`: its length, {spec.epochs} epochs per run, and its "
            "settings apply; its data and its time do not."
        )
    return f"Budget `{spec.name}`: {spec.note}. Data set `{spec.dataset}`."


def conduct(
    name: str,
    budget: str = "quick",
    out: str | Path | None = None,
    dataset: str | None = None,
    seeds: int = 1,
    parallel: int = 1,
    log: Callable[[str], None] = print,
    model: str | None = None,
    data_dir: str = "",
) -> ExperimentReport:
    from reslab.experiments import EXPERIMENTS

    if name not in EXPERIMENTS:
        raise UserError(f"experiment: unknown name {name!r}; allowed: {', '.join(EXPERIMENTS)}")
    if seeds < 1:
        raise UserError("--seeds must be >= 1")
    if parallel < 1:
        raise UserError("--parallel must be >= 1")
    experiment, spec = EXPERIMENTS[name], get_budget(budget)
    out = Path(out) if out else default_out(name, budget)
    results = run_experiment(
        experiment,
        spec,
        out,
        dataset,
        seeds,
        log=log,
        parallel=parallel,
        model=model,
        data_dir=data_dir,
    )
    sections = experiment.analyze(results, out)
    intro = (
        f"{experiment.summary.format(model=results.model)} {budget_text(spec, dataset)} "
        f"{seeds} seed(s) per "
        "run; run directories under `runs/`. Every verdict below is computed from these runs."
    )
    path = write_experiment_report(out, experiment.title, intro, sections)
    return ExperimentReport(sections, path, path.with_suffix(".html"))
