"""Confusion matrix heat maps from tensors, arrays or eval.json lists."""

import numpy as np
import pytest
import torch
from PIL import Image

from reslab.errors import UserError
from reslab.report import plot_confusion


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_png(tmp_path, normalize):
    m = torch.tensor([[5, 1, 0], [2, 7, 1], [0, 0, 0]])  # the last class has no examples
    path = plot_confusion(m, ["cat", "dog", "frog"], tmp_path / "cm.png", normalize=normalize)
    with Image.open(path) as png:
        assert png.format == "PNG" and min(png.size) > 200


def test_many_classes_from_lists(tmp_path):
    m = np.eye(100, dtype=int).tolist()
    path = plot_confusion(m, [f"c{i}" for i in range(100)], tmp_path / "cm.png")
    with Image.open(path) as png:
        assert max(png.size) < 2000  # capped, not 56 inches wide


def test_shape_must_match_classes(tmp_path):
    with pytest.raises(UserError, match=r"shape \(2, 2\) but there are 3 classes"):
        plot_confusion([[1, 0], [0, 1]], ["a", "b", "c"], tmp_path / "cm.png")
