"""Reports from run directories: tables, overlaid curves, tolerance of crashed runs."""

import json

import pytest
from PIL import Image

from reslab.errors import UserError
from reslab.report import load_run, plot_confusion, plot_curves, write_report


def fake_run(path, lr=0.1, epochs=4, summary=True, truncated=False):
    path.mkdir(parents=True)
    (path / "config.toml").write_text(
        f'model = "resnet20"\ndataset = "cifar10-sample"\n'
        f'norm = "batchnorm"\noptimizer = "sgd"\nlr = {lr}\n'
    )
    rows = [
        {
            "epoch": e,
            "step": 10 * e,
            "train_loss": 2 / e,
            "train_acc": 0.2 * e / 4 + 0.1,
            "val_loss": 2.1 / e,
            "val_acc": 0.2 * e / 4,
            "lr": lr,
            "epoch_time_s": 1.0,
            "images_per_s": 500.0,
        }
        for e in range(1, epochs + 1)
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (path / "metrics.jsonl").write_text(text + ('{"epoch": 5, "ste' if truncated else ""))
    if summary:
        (path / "summary.json").write_text(
            json.dumps(
                {
                    "model": "resnet20",
                    "params": 269722,
                    "epochs": epochs,
                    "best_val_acc": 0.2,
                    "test_acc": 0.215,
                    "test_top5": 0.7,
                    "wall_time_s": 12.5,
                    "images_per_s": 480.0,
                }
            )
        )
    return path


def test_report_table_and_figure(tmp_path):
    runs = [fake_run(tmp_path / f"r{i}", lr=lr) for i, lr in enumerate((0.1, 0.05))]
    runs.append(fake_run(tmp_path / "crashed", summary=False, truncated=True))
    with pytest.warns(UserWarning, match="unreadable line 5"):
        path = write_report(runs, tmp_path / "out", title="Comparison")
    text = path.read_text()
    assert text.startswith("# Comparison")
    assert (
        "| r0 | resnet20 | cifar10-sample | batchnorm | sgd | 0.1 | 4 | 269,722 | 20.00% | "
        "21.50% | 70.00% | 12.5 s | 480 |" in text
    )
    assert "Unfinished (no summary yet): crashed" in text
    png = Image.open(tmp_path / "out" / "curves.png")
    assert png.size[0] > 800 and png.size[1] > 300


def test_three_runs_three_legend_entries(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [load_run(fake_run(tmp_path / f"r{i}")) for i in range(3)]
    seen = {}
    original = plt.Figure.savefig

    def spy(fig, *a, **k):
        seen["labels"] = fig.axes[2].get_legend_handles_labels()[1]
        return original(fig, *a, **k)

    plt.Figure.savefig = spy
    try:
        plot_curves(runs, tmp_path / "c.png")
    finally:
        plt.Figure.savefig = original
    assert seen["labels"] == ["r0", "r1", "r2"]


def test_not_a_run_directory(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        load_run(tmp_path)


def test_confusion_png(tmp_path):
    import torch

    m = torch.tensor([[5, 1], [2, 7]])
    Image.open(plot_confusion(m, ["cat", "dog"], tmp_path / "cm.png")).verify()
