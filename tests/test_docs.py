"""The docs' generated tables match the code that owns each fact."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_tables_are_up_to_date():
    script = ROOT / "scripts" / "gen_docs.py"
    proc = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_config_key_is_in_the_docs():
    from reslab.run.config import FIELDS, flag

    text = (ROOT / "docs" / "training.md").read_text()
    assert all(f"`{flag(name)}`" in text for name in FIELDS)
