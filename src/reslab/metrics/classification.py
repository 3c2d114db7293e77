"""Classification metrics derived from a confusion matrix (rows: true class, cols: predicted)."""

from __future__ import annotations

import torch


def per_class_accuracy(confusion: torch.Tensor, classes: list[str]) -> dict[str, float | None]:
    """Recall of each class; None for a class with no samples."""
    totals = confusion.sum(dim=1)
    hits = confusion.diagonal()
    return {
        c: (hits[i].item() / totals[i].item() if totals[i] else None) for i, c in enumerate(classes)
    }


def most_confused(confusion: torch.Tensor, classes: list[str], k: int = 5) -> list[dict]:
    """The k largest off-diagonal cells: which true class is most often taken for which."""
    off = confusion.clone()
    off.fill_diagonal_(0)
    values, flat = off.flatten().topk(min(k, off.numel()))
    n = len(classes)
    return [
        {"true": classes[i // n], "predicted": classes[i % n], "count": int(v)}
        for v, i in zip(values.tolist(), flat.tolist(), strict=True)
        if v > 0
    ]
