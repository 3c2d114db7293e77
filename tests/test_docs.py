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


def _gen_docs():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _family(gen_docs, accuracies: dict[int, float]):
    """The depth family as if the given depths had shipped with these test accuracies (%)."""
    return lambda: [
        (d, paper, {"test_acc": accuracies[d] / 100, "test_images": 10_000, "epochs": 40,
                    "config": {"precision": "bf16"}, "wall_time_s": 3600.0, "device": "a CPU"}
         if d in accuracies else None)
        for d, paper in zip(gen_docs.DEPTHS, (8.75, 7.51, 7.17, 6.97), strict=True)
    ]  # fmt: skip


def test_the_depth_verdict_says_what_the_manifests_say(monkeypatch, tmp_path):
    gen = _gen_docs()
    cases = {
        "falls": (
            {20: 88.0, 32: 88.8, 44: 89.2, 56: 89.5},
            ["Error falls with depth", "more than 0.3 points: met.", "89.50%, met.", "+1.50, met."],
        ),
        "within noise": (
            {20: 88.0, 32: 89.1, 44: 88.9, 56: 89.3},
            [
                "does not fall with every added depth",
                "1 of 6 deeper-than pairs are worse, the "
                "most ResNet-44 against ResNet-32, by 0.20 points",
                "0.3 points: met.",
                "+1.30, met.",
            ],
        ),
        "missed": (
            {20: 88.4, 56: 88.0},
            [
                "ResNet-56 against ResNet-20, by 0.40 points",
                "missed by ResNet-56 vs 20 (0.10 over)",
                "88.00%, missed by 1.00.",
                "-0.40, missed by 1.40.",
            ],
        ),
        "one": ({56: 89.0}, ["not known yet"]),
    }
    for accuracies, said in cases.values():
        monkeypatch.setattr(gen, "_depth_family", _family(gen, accuracies))
        text = gen.depth_verdict()
        assert all(s in text for s in said), text
    # The table gives each error with its interval from the 10,000 test images: about 0.6 points.
    monkeypatch.setattr(gen, "_depth_family", _family(gen, {20: 88.63}))
    assert "11.37 ± 0.62 (88.63% accuracy)" in gen.depth_table()
    assert "not trained yet" in gen.depth_table()


def test_the_depth_figure_is_drawn_once_a_depth_is_trained(monkeypatch, tmp_path):
    gen = _gen_docs()
    monkeypatch.setattr(gen, "_depth_family", _family(gen, {}))
    assert gen.depth_figure(tmp_path / "depth.png") is False
    assert not (tmp_path / "depth.png").exists()
    monkeypatch.setattr(gen, "_depth_family", _family(gen, {20: 88.0, 56: 89.5}))
    assert gen.depth_figure(tmp_path / "depth.png") is True
    assert (tmp_path / "depth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
