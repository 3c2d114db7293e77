"""Curve figures: valid PNGs, one legend entry per run, clear errors for bad arguments."""

import pytest
from PIL import Image

from reslab.errors import UserError
from reslab.report import curves, load_run, plot_curves, plot_metric
from tests.report.test_runs import fake_run


@pytest.fixture
def runs(tmp_path):
    return [load_run(fake_run(tmp_path / f"r{i}", lr=0.1 * (i + 1))) for i in range(3)]


@pytest.fixture
def figures(monkeypatch):
    """The figures plot_* hand to save_figure, inspected before they are written and closed."""
    seen = []
    save = curves.save_figure

    def spy(fig, out_png):
        seen.append(fig)
        return save(fig, out_png)

    monkeypatch.setattr(curves, "save_figure", spy)
    return seen


def _legend_labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_three_runs_three_legend_entries(runs, tmp_path, figures):
    path = plot_curves(runs, tmp_path / "c.png")
    loss_ax, acc_ax, lr_ax = figures[0].axes
    assert _legend_labels(lr_ax) == ["r0", "r1", "r2"]
    assert _legend_labels(loss_ax) == ["train", "validation"]
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() and ax.get_title()
               for ax in figures[0].axes)  # fmt: skip
    assert len(acc_ax.get_lines()) == 6  # train and validation per run
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 1000 and png.size[1] > 300


def test_labels_and_step_axis(runs, tmp_path, figures):
    plot_curves(runs, tmp_path / "c.png", x="step", labels=["a", "b", "c"])
    lr_ax = figures[0].axes[2]
    assert _legend_labels(lr_ax) == ["a", "b", "c"] and lr_ax.get_xlabel() == "optimizer step"
    assert list(lr_ax.get_lines()[0].get_xdata()) == [10, 20, 30, 40]


def test_missing_validation_is_left_out(tmp_path, figures):
    run = load_run(fake_run(tmp_path / "noval", val=False))
    plot_curves([run], tmp_path / "c.png")
    assert [len(line.get_xdata()) for line in figures[0].axes[1].get_lines()] == [4, 0]


def test_plot_metric_training_error(runs, tmp_path, figures):
    path = plot_metric(
        runs, "train_acc", tmp_path / "err.png", "training error (%)", logy=True,
        transform=lambda a: 100 * (1 - a),
    )  # fmt: skip
    ax = figures[0].axes[0]
    assert ax.get_yscale() == "log" and _legend_labels(ax) == ["r0", "r1", "r2"]
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(85.0)
    with Image.open(path) as png:
        assert png.size[0] > 500


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"x": "time"}, "x must be one of"), ({"labels": ["a"]}, "1 labels for 3 runs")],
)
def test_bad_arguments(runs, tmp_path, kwargs, match):
    with pytest.raises(UserError, match=match):
        plot_curves(runs, tmp_path / "c.png", **kwargs)
    with pytest.raises(UserError, match="no runs"):
        plot_metric([], "lr", tmp_path / "m.png", "lr")


def _pixels_of(png, rgb, tolerance=60) -> int:
    import numpy as np

    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    return int((abs(pixels - np.array(rgb)).sum(-1) < tolerance).sum())


def test_a_one_epoch_run_is_visible_in_its_curves(cli, run_copy, tmp_path):
    r = cli("report", run_copy, "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    # matplotlib's first colour (C0): the run's five one-point series drawn as markers; a line
    # of one point draws nothing, and only the legend's short line would be left.
    assert _pixels_of(tmp_path / "rep" / "curves.png", (31, 119, 180)) > 200
