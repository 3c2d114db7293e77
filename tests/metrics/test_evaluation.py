"""Test-time augmentation: the views `predict_logits` averages, checked against views built by
hand on a tiny model, and the flip-only protocol unchanged to the bit."""

import pytest
import torch
from torch import nn

from reslab.metrics.evaluation import evaluate_batches, predict_logits, shifted, tta_views


def _model(dtype=torch.float64) -> nn.Module:
    # Flatten, not global pooling, so that a translated image gives other logits.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 5))
    return net.to(dtype).eval()


def _reflected(i: torch.Tensor, n: int) -> torch.Tensor:
    """Index i of a line of n pixels reflected at both ends (..., 2, 1, [0 .. n-1], n-2, ...)."""
    i = i.abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i)


def _translated(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x moved dy rows down and dx columns right, each output pixel gathered one by one from
    the reflected source, independently of F.pad."""
    h, w = x.shape[-2:]
    rows = _reflected(torch.arange(h) - dy, h)
    cols = _reflected(torch.arange(w) - dx, w)
    return x[:, :, rows][:, :, :, cols]


def _views(x: torch.Tensor, shift: int) -> list[tuple[float, torch.Tensor]]:
    plain = [x, _translated(x, shift, shift), _translated(x, -shift, -shift)]
    weights = [1 / 4, 1 / 8, 1 / 8]  # per view: the unshifted pair weighs half
    return [(w, v) for w, img in zip(weights, plain, strict=True) for v in (img, img.flip(3))]


@pytest.mark.parametrize("shift", [1, 2, 7])
def test_shifted_tta_is_the_weighted_mean_over_views_built_by_hand(shift):
    model, x = _model(), torch.randn(3, 3, 8, 8, dtype=torch.float64)
    views = _views(x, shift)
    assert sum(w for w, _ in views) == 1 and len(views) == tta_views(True, shift) == 6
    expected = sum(w * model(v) for w, v in views)
    torch.testing.assert_close(predict_logits(model, x, True, shift), expected)


def test_the_shifted_views_move_the_image_and_reflect_the_edge_that_comes_in():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    down_right, up_left = shifted(x, 1)
    assert down_right[0, 0, 1:, 1:].equal(x[0, 0, :3, :3])  # moved, nothing wrapped round
    assert up_left[0, 0, :3, :3].equal(x[0, 0, 1:, 1:])
    assert down_right[0, 0, 0].tolist() == [5.0, 4.0, 5.0, 6.0]  # row 1, reflected, moved right


def test_without_a_shift_tta_is_the_flip_average_to_the_bit():
    model, x = _model(torch.float32), torch.randn(4, 3, 8, 8)
    # The formula before shifts existed, written out.
    flips = (model(x) + model(torch.flip(x, dims=(3,)))) / 2
    assert predict_logits(model, x, True).equal(flips)
    assert predict_logits(model, x, True, 0).equal(flips)
    assert predict_logits(model, x, False).equal(model(x))
    assert (tta_views(False), tta_views(True), tta_views(True, 0)) == (1, 2, 2)


def test_evaluation_with_shift_zero_is_the_flip_evaluation():
    model, x = _model(torch.float32), torch.randn(20, 3, 8, 8)
    batches = [(x[:10], torch.arange(10) % 5), (x[10:], torch.arange(10) % 5)]
    before = evaluate_batches(model, batches, 5, tta=True)
    now = evaluate_batches(model, batches, 5, tta=True, tta_shift=0)
    assert (now.loss, now.top1, now.top5) == (before.loss, before.top1, before.top5)
    assert now.confusion.equal(before.confusion)
    shifted_result = evaluate_batches(model, batches, 5, tta=True, tta_shift=2)
    assert shifted_result.count == 20 and shifted_result.loss != before.loss


def test_a_shift_without_tta_is_a_bug():
    with pytest.raises(ValueError, match="needs tta"):
        predict_logits(_model(), torch.zeros(1, 3, 8, 8, dtype=torch.float64), False, 1)


def _channels_last_under_autocast(device: str):
    model = _model(torch.float32).to(device).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 8, 8, device=device)
    reference = predict_logits(model, x, True, 2)
    fast = x.to(memory_format=torch.channels_last)
    for view in shifted(fast, 2):
        assert view.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(predict_logits(model, fast, True, 2), reference)
    with torch.autocast(device, dtype=torch.bfloat16):
        low = predict_logits(model, fast, True, 2)
    assert low.dtype == torch.bfloat16  # every view went through the autocast
    torch.testing.assert_close(low.float(), reference, atol=0.1, rtol=0.1)


def test_channels_last_batches_under_autocast_on_cpu():
    _channels_last_under_autocast("cpu")


@pytest.mark.gpu
def test_channels_last_batches_under_autocast_on_cuda():
    _channels_last_under_autocast("cuda")
