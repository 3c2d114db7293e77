"""The run directory's names for evaluation results: one pair of files per protocol, and the
names runs have always had kept."""

import itertools

from reslab.run.directory import RunDir


def test_each_evaluation_protocol_has_files_of_its_own(tmp_path):
    run = RunDir(tmp_path)
    protocols = list(itertools.product(("test", "val"), (False, True), (False, True), (0, 1, 2)))
    files = {run.evaluation_files(split, tta, augmented, shift)
             for split, tta, augmented, shift in protocols if tta or not shift}  # fmt: skip
    assert len(files) == len([p for p in protocols if p[1] or not p[3]])


def test_names_from_before_shifts_are_kept_and_a_shift_is_spelled_out(tmp_path):
    run = RunDir(tmp_path)
    assert run.evaluation_files("test", False) == (run.evaluation, run.confusion)
    assert run.evaluation_files("test", True)[0].name == "eval.test-tta.json"
    assert run.evaluation_files("test", True, tta_shift=0)[0].name == "eval.test-tta.json"
    assert run.evaluation_files("val", True, True)[1].name == "confusion.val-tta-augmented.png"
    results, figure = run.evaluation_files("test", True, tta_shift=2)
    assert (results.name, figure.name) == (
        "eval.test-tta-shift2.json",
        "confusion.test-tta-shift2.png",
    )
    assert (
        run.evaluation_files("val", True, True, 1)[0].name == "eval.val-tta-shift1-augmented.json"
    )


def test_every_evaluation_is_found_eval_json_first(tmp_path):
    run = RunDir(tmp_path)
    for name in ("eval.test-tta-shift2.json", "eval.test-tta.json", "eval.json"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in run.evaluations()] == [
        "eval.json", "eval.test-tta-shift2.json", "eval.test-tta.json"
    ]  # fmt: skip
