"""An evaluation's files in a folder: eval.json and the confusion-matrix figure, named as a run
directory names them (`reslab eval` writes them into the run it evaluated)."""

from __future__ import annotations

from pathlib import Path

from reslab.infer import Evaluation
from reslab.io import atomic_write_json
from reslab.report.confusion import plot_confusion
from reslab.run.directory import RunDir


def write_evaluation(evaluation: Evaluation, folder: str | Path) -> tuple[Path, Path]:
    """eval.json and the confusion-matrix PNG in `folder`; returns their paths."""
    run = RunDir(folder)
    atomic_write_json(run.evaluation, evaluation.to_json())
    plot_confusion(evaluation.confusion, evaluation.classes, run.confusion)
    return run.evaluation, run.confusion
