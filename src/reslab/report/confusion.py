"""The confusion matrix as a PNG heat map."""

from __future__ import annotations

from pathlib import Path

import torch

from reslab.report.curves import _pyplot, _save


def plot_confusion(
    matrix: torch.Tensor, classes: list[str], out_png: str | Path, normalize: bool = True
) -> Path:
    """Rows are true classes, columns predictions; normalized rows read as recall."""
    plt = _pyplot()
    m = matrix.double()
    if normalize:
        m = m / m.sum(dim=1, keepdim=True).clamp_min(1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n))
    im = ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                v = m[i, j].item()
                text = f"{v:.2f}" if normalize else str(int(v))
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > (0.5 if normalize else m.max().item() / 2) else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title("confusion matrix" + (" (row-normalized)" if normalize else ""))
    return _save(fig, out_png)
