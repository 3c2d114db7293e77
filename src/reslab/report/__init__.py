"""Reports: terminal tables, training curves, confusion matrices, evaluations' files and
markdown summaries."""

from reslab.report.confusion import plot_confusion
from reslab.report.curves import plot_curves, plot_metric
from reslab.report.evaluation import write_evaluation
from reslab.report.markdown import write_report
from reslab.report.runs import RunRecord, load_run

__all__ = [
    "RunRecord",
    "load_run",
    "plot_confusion",
    "plot_curves",
    "plot_metric",
    "write_evaluation",
    "write_report",
]
