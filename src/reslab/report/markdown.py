"""report.md for one or more runs (a results table, the curves, the last epochs, evaluations),
and the markdown table writer every report uses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from reslab.errors import UserError
from reslab.io import atomic_write_text
from reslab.report.confusion import plot_confusion
from reslab.report.curves import plot_curves
from reslab.report.runs import RunRecord, load_run
from reslab.run.directory import RunDir, evaluation_protocol

RESULT_COLUMNS = (
    "run", "model", "dataset", "norm", "optimizer", "lr", "epochs", "params",
    "best val acc", "test acc", "test top-5", "wall time", "images/s",
)  # fmt: skip
LAST_EPOCH_COLUMNS = (
    "run", "epoch", "step", "train loss", "train acc", "val loss", "val acc", "lr",
    "epoch time", "images/s",
)  # fmt: skip


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _num(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _duration(seconds) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"


def _cell(v) -> str:
    text = "-" if v is None or v == "" else str(v)
    return text.replace("|", r"\|").replace("\n", " ")  # a "|" would split the table cell


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The one writer of markdown tables in reports: every cell, headers included, escaped."""
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _epochs(run: RunRecord) -> str:
    if "epochs" in run.summary:
        return str(run.summary["epochs"])
    planned = run.config.get("epochs")  # unfinished: epochs done of planned
    return f"{len(run.metrics)}/{planned}" if planned else str(len(run.metrics))


def _result_row(run: RunRecord, name: str) -> list[str]:
    c, s = run.config, run.summary
    return [
        name,
        s.get("model", c.get("model")),
        s.get("dataset", c.get("dataset")),
        c.get("norm"),
        c.get("optimizer"),
        _num(c.get("lr"), "g"),
        _epochs(run),
        _num(s.get("params"), ","),
        _pct(s.get("best_val_acc")),
        _pct(s.get("test_acc")),
        _pct(s.get("test_top5")),
        _duration(s.get("wall_time_s")),
        _num(s.get("images_per_s"), ".0f"),
    ]


def _last_epoch_row(run: RunRecord, name: str) -> list[str]:
    m = run.last()
    return [
        name,
        m.get("epoch"),
        m.get("step"),
        _num(m.get("train_loss"), ".4f"),
        _pct(m.get("train_acc")),
        _num(m.get("val_loss"), ".4f"),
        _pct(m.get("val_acc")),
        _num(m.get("lr"), ".4g"),
        _duration(m.get("epoch_time_s")),
        _num(m.get("images_per_s"), ".0f"),
    ]


def _unique_names(runs: Sequence[RunRecord]) -> list[str]:
    """Directory names, made distinct (runs/a/seed0 and runs/b/seed0 -> a/seed0, b/seed0)."""
    names = [r.name for r in runs]
    names = [f"{r.path.resolve().parent.name}/{n}" if names.count(n) > 1 else n
             for r, n in zip(runs, names, strict=True)]  # fmt: skip
    return [f"{n} ({i + 1})" if names.count(n) > 1 else n for i, n in enumerate(names)]


def _evaluations(runs: Sequence[RunRecord], names: list[str], out_dir: Path) -> str:
    """One paragraph and confusion matrix per evaluation (split, TTA) of each run."""
    parts = []
    for run, name in zip(runs, names, strict=True):
        for ev in run.evaluations:
            parts.append(_evaluation(ev, name, out_dir))
    return "\n".join(parts)


def _protocol(tta: bool, shift: int, augmented: bool) -> str:
    """How an evaluation was made, in words."""
    if shift:
        text = f"with flip and {shift}-pixel translation test-time augmentation"
    else:
        text = "with flip test-time augmentation" if tta else "without test-time augmentation"
    if augmented:
        text += " and with the training augmentation left on (for comparison only)"
    return text


def _evaluation(ev: dict, name: str, out_dir: Path) -> str:
    split, tta, augmented = ev.get("split", "test"), bool(ev.get("tta")), bool(ev.get("augmented"))
    shift = int(ev.get("tta_shift") or 0) * tta  # results from before shifts: flips only
    protocol = _protocol(tta, shift, augmented)
    command = "reslab eval" + " --split val" * (split == "val") + " --tta" * tta
    command += f" --tta-shift {shift}" * bool(shift) + " --augmented" * augmented
    tag = f", TTA shift {shift}" if shift else ", TTA" if tta else ""
    text = f"### {name}, {split} split{tag}{', augmented' * augmented}\n\n"
    text += f"`{command}`, {split} split, {protocol}: "
    text += f"top-1 {_pct(ev.get('top1'))}, top-5 {_pct(ev.get('top5'))}.\n"
    if ev.get("confusion") and ev.get("classes"):
        files = evaluation_protocol(split, tta, augmented, shift)
        label = name if files == "test" else f"{name}-{files}"
        png = f"confusion-{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}.png"
        plot_confusion(ev["confusion"], ev["classes"], out_dir / png)
        label = f"confusion matrix of {name}, {split} split, {protocol}, rows normalized"
        text += f"\n![{label}]({png})\n"
    return text


def _remove_stale_figures(out_dir: Path, text: str) -> None:
    """Confusion images of earlier reports in this folder that this one no longer links."""
    for old in out_dir.glob("confusion-*.png"):
        if f"]({old.name})" not in text:
            old.unlink(missing_ok=True)


def _compose(
    runs: Sequence[RunRecord], names: list[str], title: str, evaluations: str, curves: str
) -> str:
    pairs = list(zip(runs, names, strict=True))
    unfinished = [n for r, n in pairs if not r.finished]
    note = f"\nUnfinished (no summary yet): {', '.join(unfinished)}.\n" if unfinished else ""
    results = markdown_table(RESULT_COLUMNS, [_result_row(r, n) for r, n in pairs])
    last = markdown_table(LAST_EPOCH_COLUMNS, [_last_epoch_row(r, n) for r, n in pairs])
    text = (
        f"# {title}\n\n## Results\n\n{results}\n{note}\n"
        'Accuracies are top-1 unless marked top-5; "-": not recorded (yet). The test accuracy '
        "is the final evaluation at the end of training (with flip test-time augmentation only "
        "where the run's config says `tta = true`, and translated views too where it sets "
        "`tta_shift`); the Evaluation section, where there is one, states its own protocol.\n\n"
        f"## Curves\n\n![loss, accuracy and learning rate per epoch]({curves})\n\n"
        "Solid lines: training split; dashed: validation split.\n\n"
        f"## Last epoch\n\n{last}\n"
    )
    return text + (f"\n## Evaluation\n\n{evaluations}" if evaluations else "")


def write_report(
    run_dirs: Sequence[str | Path], out_dir: str | Path, title: str | None = None
) -> Path:
    """Write out_dir/report.md and the figures it links (curves.png, confusion-*.png)."""
    if not run_dirs:
        raise UserError("no run directories given; pass at least one")
    runs = [load_run(p) for p in run_dirs]
    names = _unique_names(runs)
    out_dir, folder = Path(out_dir), RunDir(out_dir)  # a report folder is named as a run's
    plot_curves(runs, folder.curves, labels=names)
    title = title or (f"Run {names[0]}" if len(runs) == 1 else f"{len(runs)} runs compared")
    text = _compose(runs, names, title, _evaluations(runs, names, out_dir), folder.curves.name)
    _remove_stale_figures(out_dir, text)
    return atomic_write_text(folder.report, text)
