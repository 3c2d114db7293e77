"""An experiment by name, start to finish: run its grid, analyze it, write its report. This is
what `reslab experiment` does."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reslab.errors import UserError
from reslab.experiments.analysis import final, fmt
from reslab.experiments.runner import ExperimentResults, run_experiment
from reslab.experiments.spec import Budget, get_budget
from reslab.report.experiment import Section, write_experiment_report
from reslab.run.directory import default_location


@dataclass
class ExperimentReport:
    """The verdicts of one experiment and where its report was written."""

    sections: list[Section]
    markdown: Path  # report.md; report.html sits beside it
    html: Path


def default_out(name: str, budget: str, epochs: int | None = None) -> Path:
    """Where a grid goes unless told: one folder per experiment, budget and --epochs."""
    longer = f"-{epochs}epochs" if epochs is not None else ""
    return default_location("experiments", f"{name}-{budget}{longer}")


def budget_text(
    spec: Budget, dataset: str | None, experiment: str = "", epochs: int | None = None
) -> str:
    """The report's sentence on the budget. Its note describes the budget's own data and time,
    so a run on another data set says which parts still hold; a folder is taken to hold the
    budget's own data set (the usual way to give CIFAR-10 offline), which the report says.
    `epochs` is a length the user asked for instead of the budget's, which the sentence says."""
    own = spec.epochs_of(experiment)
    length, applies = f"{own} epochs per run", f"its length, {own} epochs per run, and its settings"
    if epochs not in (None, own):
        asked = f"{epochs} epochs per run (asked with --epochs instead of the budget's {own}"
        length, applies = (
            f"{asked}, so the budget's time does not hold)",
            f"its settings, for {asked}),",
        )
    if dataset and dataset.startswith("folder:") and spec.dataset != "cifar10-sample":
        return (
            f"Budget `{spec.name}`: {spec.note}. Data set `{spec.dataset}`, read from "
            f"`{dataset}`; {length}."
        )
    if dataset and dataset != spec.dataset:
        return (
            f"Budget `{spec.name}` ({spec.note}), run here on `{dataset}` instead of its own "
            f"data set `{spec.dataset}`: {applies} apply; its data and its time do not."
        )
    return f"Budget `{spec.name}`: {spec.note}. Data set `{spec.dataset}`; {length}."


def _longer(experiment, spec: Budget, epochs: int, model: str | None) -> Budget:
    """The budget with the experiment's runs `epochs` long; refused for a grid whose runs have
    a length of their own (a number of steps), which --epochs would not change."""
    if epochs < 1:
        raise UserError("--epochs must be >= 1")
    longer = dataclasses.replace(spec, epochs_for={**spec.epochs_for, experiment.name: epochs})
    if all("max_steps" in s.overrides for s in experiment.grid(longer, model)):
        raise UserError(
            f"experiment {experiment.name} trains a fixed number of steps; --epochs does not "
            "change it"
        )
    return longer


def runs_section(results: ExperimentResults) -> Section:
    """What each run cost on the machine that ran it: steps, training time, images per second
    (the sum and mean over its epochs; evaluation excluded) and where it ended."""
    rows, total = [], 0.0
    for r in results.runs:
        epochs = [m for m in r.record.metrics if m.get("epoch_time_s") is not None]
        seconds = sum(m["epoch_time_s"] for m in epochs)
        total += seconds
        speed = [m["images_per_s"] for m in epochs if m.get("images_per_s")]
        acc = final(r.record, "val_acc")
        rows.append(
            [
                r.record.name,
                r.status,
                str(epochs[-1]["step"] if epochs else 0),
                f"{seconds:,.0f}",
                f"{sum(speed) / len(speed):,.0f}" if speed else "-",
                fmt(float("nan") if acc is None else acc, 0.0),
            ]
        )
    return Section(
        "Runs",
        "",
        "",
        f"{len(rows)} runs, {total / 3600:.2f} h of training in all (the sum of the epoch "
        "times each run recorded; a run that shared its cores with others took longer).",
        headers=["run", "status", "steps", "training time (s)", "images/s", "final val acc"],
        rows=rows,
    )


def conduct(
    name: str,
    budget: str = "quick",
    out: str | Path | None = None,
    dataset: str | None = None,
    seeds: int | None = None,
    parallel: int = 1,
    log: Callable[[str], None] = print,
    model: str | None = None,
    data_dir: str = "",
    command: str = "",
    more_seeds: int = 0,
    epochs: int | None = None,
) -> ExperimentReport:
    """Run the grid, analyze it and write the report. With `more_seeds`, the verdicts the grid
    leaves open get that many seeds in all for the runs they rest on (each arm at the rate
    chosen on the grid's own seeds), and the report is made from every run. `epochs` trains
    the grid's runs for that many epochs instead of the budget's (a grid run longer)."""
    from reslab.experiments import EXPERIMENTS

    if name not in EXPERIMENTS:
        raise UserError(f"experiment: unknown name {name!r}; allowed: {', '.join(EXPERIMENTS)}")
    if parallel < 1:
        raise UserError("--parallel must be >= 1")
    experiment, spec = EXPERIMENTS[name], get_budget(budget)
    seeds = spec.seeds if seeds is None else seeds  # the budget's, unless the user says
    if seeds < 1:
        raise UserError("--seeds must be >= 1")
    if more_seeds and more_seeds <= seeds:
        raise UserError(f"--more-seeds must exceed --seeds ({seeds}), got {more_seeds}")
    own = spec
    if epochs is not None:
        spec = _longer(experiment, spec, epochs, model)
    out = Path(out) if out else default_out(name, budget, epochs)

    def run(more=None):
        return run_experiment(experiment, spec, out, dataset, seeds, log=log, parallel=parallel,
                              model=model, data_dir=data_dir, more=more)  # fmt: skip

    results = run()
    sections = experiment.analyze(results, out)
    opened = list(dict.fromkeys(n for s in sections for n in s.open_runs))
    more_text = ""
    if more_seeds and opened:
        log(f"open verdicts: {more_seeds} seeds for {', '.join(opened)}")
        results = run({n: more_seeds for n in opened})
        sections = experiment.analyze(results, out)
        more_text = (
            f" The verdicts {seeds} seed(s) left open got {more_seeds} seeds in all for the runs "
            f"they rest on ({', '.join(opened)}); a choice between rates was made on the first "
            f"{seeds} seed(s) of every run."
        )
    elif more_seeds:
        more_text = f" No verdict was left open at {seeds} seed(s): none needed more."
    budget_said = budget_text(own, dataset, name, epochs)
    intro = (
        f"{experiment.summary.format(model=results.model)} {budget_said} "
        f"{seeds} seed(s) per run; run directories under `runs/`.{more_text} Every verdict "
        "below is computed from these runs."
    )
    if command:
        intro += f" Made by `{command}`."
    sections = [*sections, runs_section(results)]
    path = write_experiment_report(out, experiment.title, intro, sections)
    return ExperimentReport(sections, path, path.with_suffix(".html"))
