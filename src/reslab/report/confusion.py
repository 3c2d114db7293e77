"""The confusion matrix as a PNG heat map."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reslab.errors import UserError
from reslab.report.curves import pyplot, save_figure

ANNOTATE_UP_TO = 20  # classes; beyond this the cell numbers become unreadable
LABEL_UP_TO = 60  # classes; beyond this tick labels overlap even at the largest size


def _as_square(matrix, classes: Sequence[str]) -> np.ndarray:
    if hasattr(matrix, "detach"):  # a torch tensor, possibly on a GPU
        matrix = matrix.detach().cpu().numpy()
    m = np.asarray(matrix, dtype=np.float64)
    n = len(classes)
    if m.shape != (n, n):
        raise UserError(
            f"confusion matrix has shape {m.shape} but there are {n} classes; "
            f"it must be {n}x{n} (rows true class, columns prediction)"
        )
    return m


def _annotate(ax, m: np.ndarray, normalize: bool) -> None:
    threshold = 0.5 * (m.max() or 1)  # white text on the dark half of the colour map
    for i, j in np.ndindex(m.shape):
        v = m[i, j]
        ax.text(
            j,
            i,
            f"{v:.2f}" if normalize else f"{v:.0f}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if v > threshold else "black",
        )


def plot_confusion(
    matrix, classes: Sequence[str], out_png: str | Path, normalize: bool = True
) -> Path:
    """Rows are true classes, columns predictions (a tensor, array or nested list of counts).

    Normalized rows read as per-class recall; a class with no examples stays a row of zeros.
    """
    m = _as_square(matrix, classes)
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    side = min(14.0, 2.0 + 0.5 * n)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    if n <= LABEL_UP_TO:
        ax.set_xticks(range(n), list(classes), rotation=45, ha="right")
        ax.set_yticks(range(n), list(classes))
    if n <= ANNOTATE_UP_TO:
        _annotate(ax, m, normalize)
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.set_title("confusion matrix" + (" (rows normalized: recall)" if normalize else " (counts)"))
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("fraction of the true class" if normalize else "images")
    return save_figure(fig, out_png)
