"""An evaluation's files in a folder: its results (JSON) and confusion-matrix figure, named as a
run directory names them, one pair per split and TTA protocol (`reslab eval` writes them into the
run it evaluated)."""

from __future__ import annotations

from pathlib import Path

from reslab.infer import Evaluation
from reslab.io import atomic_write_json
from reslab.report.confusion import plot_confusion
from reslab.run.directory import RunDir


def write_evaluation(evaluation: Evaluation, folder: str | Path) -> tuple[Path, Path]:
    """The results JSON and the confusion-matrix PNG in `folder`; returns their paths."""
    results, figure = RunDir(folder).evaluation_files(
        evaluation.split, evaluation.tta, evaluation.augmented, evaluation.tta_shift
    )
    atomic_write_json(results, evaluation.to_json())
    plot_confusion(evaluation.confusion, evaluation.classes, figure)
    return results, figure
