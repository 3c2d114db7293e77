"""Classification metrics from a confusion matrix, against hand computations and against the
same figures counted directly from labels and predictions."""

import numpy as np
import pytest
import torch

from reslab.metrics import most_confused, per_class_accuracy

CLASSES = ["cat", "dog", "frog"]


def _confusion(labels: torch.Tensor, preds: torch.Tensor, n: int) -> torch.Tensor:
    """Rows: true class, columns: predicted class."""
    return torch.bincount(labels * n + preds, minlength=n * n).view(n, n)


def test_per_class_accuracy_by_hand():
    confusion = torch.tensor([[5, 1, 0], [2, 7, 1], [0, 0, 0]])  # no frog in the test set
    acc = per_class_accuracy(confusion, CLASSES)
    assert list(acc) == CLASSES
    assert acc["cat"] == pytest.approx(5 / 6) and acc["dog"] == pytest.approx(7 / 10)
    assert acc["frog"] is None  # no samples: no accuracy, rather than 0 or a division error


def test_per_class_accuracy_is_the_recall_counted_from_predictions():
    rng = np.random.default_rng(0)
    n = 7
    labels = rng.integers(0, n, 500)
    preds = np.where(rng.random(500) < 0.6, labels, rng.integers(0, n, 500))
    names = [f"c{i}" for i in range(n)]
    acc = per_class_accuracy(
        _confusion(torch.from_numpy(labels), torch.from_numpy(preds), n), names
    )
    for i, name in enumerate(names):
        assert acc[name] == pytest.approx(np.mean(preds[labels == i] == i), abs=1e-12)


def test_most_confused_by_hand():
    confusion = torch.tensor([[5, 4, 1], [2, 7, 0], [0, 3, 9]])
    before = confusion.clone()
    assert most_confused(confusion, CLASSES, k=3) == [
        {"true": "cat", "predicted": "dog", "count": 4},
        {"true": "frog", "predicted": "dog", "count": 3},
        {"true": "dog", "predicted": "cat", "count": 2},
    ]
    # Never the diagonal, never an empty cell, and k beyond the matrix size is no error.
    assert [c["count"] for c in most_confused(confusion, CLASSES, k=100)] == [4, 3, 2, 1]
    assert torch.equal(confusion, before)  # the caller's matrix keeps its diagonal


def test_a_perfect_classifier_confuses_nothing():
    assert most_confused(torch.diag(torch.tensor([3, 5, 2])), CLASSES) == []


def test_most_confused_against_a_sort_of_all_off_diagonal_cells():
    rng = np.random.default_rng(1)
    n, k = 10, 5
    labels = rng.integers(0, n, 2000)
    preds = np.where(rng.random(2000) < 0.5, labels, rng.integers(0, n, 2000))
    confusion = _confusion(torch.from_numpy(labels), torch.from_numpy(preds), n)
    names = [f"c{i}" for i in range(n)]
    counts = {
        (i, j): int(((labels == i) & (preds == j)).sum())
        for i in range(n)
        for j in range(n)
        if i != j
    }
    top = most_confused(confusion, names, k=k)
    assert [c["count"] for c in top] == sorted(counts.values(), reverse=True)[:k]
    for c in top:  # each named cell holds its count (ties may come in any order)
        assert counts[(names.index(c["true"]), names.index(c["predicted"]))] == c["count"]
