"""report.md: the results table, the linked figures, the last epochs, unfinished runs."""

import re

import pytest
from PIL import Image

from reslab.errors import UserError
from reslab.report import write_report
from reslab.report.experiment import Section, to_markdown
from reslab.report.markdown import markdown_table
from tests.report.test_runs import fake_run


@pytest.fixture
def report(tmp_path):
    dirs = [fake_run(tmp_path / f"r{i}", lr=lr) for i, lr in enumerate((0.1, 0.05))]
    dirs.append(fake_run(tmp_path / "crashed", summary=False, truncated=True))
    with pytest.warns(UserWarning, match="unreadable line 5"):
        path = write_report(dirs, tmp_path / "out", title="Comparison")
    return path, path.read_text()


def test_results_table(report):
    _, text = report
    assert text.startswith("# Comparison\n")
    assert (
        "| run | model | dataset | norm | optimizer | lr | epochs | params | best val acc | "
        "test acc | test top-5 | wall time | images/s |" in text
    )
    assert (
        "| r0 | resnet20 | cifar10-sample | batchnorm | sgd | 0.1 | 4 | 269,722 | 20.00% | "
        "21.50% | 70.00% | 12.5 s | 480 |" in text
    )
    assert "| r1 | resnet20 | cifar10-sample | batchnorm | sgd | 0.05 | 4 |" in text
    crashed = "| crashed | resnet20 | cifar10-sample | batchnorm | sgd | 0.1 | 4/5 |"
    assert crashed + " - |" * 6 in text  # epochs done/planned; no summary values
    assert "Unfinished (no summary yet): crashed." in text


def test_last_epoch_rows(report):
    _, text = report
    assert "| r1 | 4 | 40 | 0.5000 | 30.00% | 0.5250 | 20.00% | 0.0125 | 1.0 s | 500 |" in text
    assert "| crashed | 4 | 40 |" in text


def test_figures_are_linked_relative_and_valid(report):
    path, text = report
    links = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", text)
    assert links == ["curves.png"]
    with Image.open(path.parent / links[0]) as png:
        assert png.format == "PNG" and png.size[0] > 1000 and png.size[1] > 300
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files


def test_evaluation_section_with_confusion(tmp_path):
    ev = {"top1": 0.42, "top5": 0.9, "split": "test", "classes": ["cat", "dog"],
          "confusion": [[3, 1], [2, 4]], "per_class_acc": {"cat": 0.75, "dog": 0.67}}  # fmt: skip
    path = write_report([fake_run(tmp_path / "run a", evaluation=ev)], tmp_path / "out")
    text = path.read_text()
    assert text.startswith("# Run run a\n")
    assert "`reslab eval`, test split, without test-time augmentation: top-1 42.00%" in text
    assert "(confusion-run_a.png)" in text
    with Image.open(path.parent / "confusion-run_a.png") as png:
        assert png.format == "PNG"


def test_evaluation_protocol_is_labelled_and_old_figures_do_not_pile_up(tmp_path):
    ev = {"top1": 0.5, "top5": 0.9, "split": "test", "tta": True, "classes": ["cat", "dog"],
          "confusion": [[3, 1], [2, 4]]}  # fmt: skip
    first = fake_run(tmp_path / "first", evaluation=ev)
    write_report([first], tmp_path / "out")
    assert (tmp_path / "out" / "confusion-first-test-tta.png").is_file()
    text = write_report([fake_run(tmp_path / "second", evaluation=ev)], tmp_path / "out")
    text = text.read_text()
    assert "`reslab eval --tta`, test split, with flip test-time augmentation: top-1 50.00%" in text
    assert "confusion matrix of second, test split, with flip test-time augmentation" in text
    assert sorted(p.name for p in (tmp_path / "out").glob("confusion-*")) == [
        "confusion-second-test-tta.png"
    ]


def test_a_tta_shift_is_labelled_and_results_from_before_shifts_read_as_flips(tmp_path):
    ev = {"top1": 0.5, "top5": 0.9, "split": "test", "tta": True, "tta_shift": 2,
          "classes": ["cat", "dog"], "confusion": [[3, 1], [2, 4]]}  # fmt: skip
    text = write_report([fake_run(tmp_path / "r", evaluation=ev)], tmp_path / "out").read_text()
    assert "### r, test split, TTA shift 2\n" in text
    assert (
        "`reslab eval --tta --tta-shift 2`, test split, with flip and 2-pixel translation " in text
    )
    assert (tmp_path / "out" / "confusion-r-test-tta-shift2.png").is_file()
    del ev["tta_shift"]  # eval.test-tta.json as written before shifts existed
    text = write_report([fake_run(tmp_path / "old", evaluation=ev)], tmp_path / "o").read_text()
    assert "`reslab eval --tta`, test split, with flip test-time augmentation: top-1" in text


def test_same_names_in_different_folders_stay_apart(tmp_path):
    dirs = [fake_run(tmp_path / p / "seed0") for p in ("a", "b")]
    text = write_report(dirs, tmp_path / "out").read_text()
    assert "| a/seed0 |" in text and "| b/seed0 |" in text


def test_bad_inputs(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        write_report([tmp_path / "nope"], tmp_path / "out")
    with pytest.raises(UserError, match="no run directories"):
        write_report([], tmp_path / "out")


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_a_pipe_or_newline_in_a_cell_stays_inside_it():
    table = markdown_table(["run", "lr|wd"], [["a|b", "two\nlines"], [None, ""]])
    lines = table.splitlines()
    assert len(lines) == 4  # header, rule, two rows: no cell spilled onto a line of its own
    assert all(_unescaped_pipes(line) == 3 for line in lines)  # two columns on every line
    assert lines[0] == r"| run | lr\|wd |"
    assert lines[2] == r"| a\|b | two lines |"
    assert lines[3] == "| - | - |"


def test_experiment_report_tables_escape_pipes_too():
    section = Section(
        "title",
        "claim",
        "supported",
        "evidence.",
        headers=["optimizer", "sweep"],
        rows=[["sgd", "0.1: 30% | 0.3: 35%"]],
    )
    rows = [line for line in to_markdown("T", "intro", [section]).splitlines() if "sgd" in line]
    assert rows == [r"| sgd | 0.1: 30% \| 0.3: 35% |"]
    assert _unescaped_pipes(rows[0]) == 3
