"""The commands that compute nothing answer without importing torch: `--help` of the command and
of every subcommand, `--version`, `reslab models`. What they show comes from cli.json, which must
say what the code's tables say."""

from reslab.cli import CLI_FILE, describe_commands_json
from tests.conftest import run_python

COMMANDS = [["--help"], ["--version"], ["models"], ["models", "resnet2*"]]
COMMANDS += [[c, "--help"] for c in ("models", "train", "eval", "predict", "export", "report",
                                     "experiment")]  # fmt: skip


def test_cli_json_is_what_the_code_says():
    assert CLI_FILE.read_text() == describe_commands_json(), "run python scripts/gen_docs.py"


def test_help_version_and_models_import_no_torch(tmp_path):
    script = tmp_path / "answer.py"
    script.write_text(
        "import contextlib, io, sys\n"
        "from reslab.cli import main\n"
        f"for argv in {COMMANDS!r}:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "    assert out.getvalue(), argv\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))\n"
    )
    r = run_python(script, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_help_says_what_reslab_is_in_a_whole_sentence(capsys):
    import pytest

    from reslab.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "reslab: build, train and study batch-normalized residual networks." in out
