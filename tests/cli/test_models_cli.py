"""`reslab models` as a user runs it: the console command once, then the CLI's `main` in this
process."""

from reslab.models import pretrained
from tests.conftest import run_cli


def test_models_table_lists_names_params_and_flops():
    r = run_cli("models", "resnet2*")
    assert r.returncode == 0, r.stderr
    assert "resnet20" in r.stdout and "269,722" in r.stdout and "8.75" in r.stdout
    assert "0.08" in r.stdout  # resnet20: 0.08 GFLOPs (multiply-add = 2 FLOPs) at 32x32
    assert "resnet32" not in r.stdout
    # the measured error of each model's shipped default weights, from their manifest
    shipped = [w.manifest for w in pretrained.shipped().values() if w.manifest["default"]]
    every = run_cli("models").stdout.splitlines()
    for m in shipped:
        row = next(line for line in every if line.split()[0] == m["model"])
        assert row.split()[-1] == f"{100 * (1 - m['test_acc']):.2f}"


def test_models_piped_keeps_every_name_whole(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("models")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines()[1:] if not line.startswith("paper error:")]
    names = [line.split()[0] for line in lines]
    assert "preact_resnet1001" in names and "preact_resnet110" in names
    assert "…" not in r.stdout


def test_unknown_pattern_is_one_line_and_exit_2(cli):
    r = cli("models", "densenet*")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "densenet*" in r.stderr and "Traceback" not in r.stderr


def test_bad_subcommand_is_one_line_and_exit_2(cli):
    r = cli("trian")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_models_weights_lists_every_shipped_tag_as_its_manifest_says(cli):
    r = cli("models", "--weights")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:-1]}
    assert set(rows) == set(pretrained.shipped())
    for name, w in pretrained.shipped().items():
        m, cells = w.manifest, rows[name].split()
        assert f"{100 * (1 - m['test_acc']):.2f}" in cells and m["recipe"] == cells[-1]
        assert ("yes" in cells) == m["default"]
        assert f"{m['wall_time_s'] / 3600:.2f}" in cells and str(m["epochs"]) in cells
    one = cli("models", "--weights", "resnet20.onecycle80_full*")
    assert len(one.stdout.splitlines()) == 3  # header, the row, the footnote
    none = cli("models", "--weights", "densenet*")
    assert none.returncode == 2 and none.stderr.count("\n") == 1
    assert "no shipped weights match 'densenet*'" in none.stderr
