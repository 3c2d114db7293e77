"""Layers of `models/layers.py` that have no PyTorch original: the injected covariate shift of
the `batchnorm-noisy` norm."""

import torch
from torch import nn

from reslab.models import NORMS
from reslab.models.layers import NOISE_SHIFT, NOISE_SPREAD, StepShift


def _affine_per_channel(x, out):
    """(scale, shift) of each channel when out = scale * x + shift for every image and position,
    checked; the fit of channel c from its values."""
    xs, ys = x.transpose(0, 1).flatten(1), out.transpose(0, 1).flatten(1)
    scale = (ys[:, 1] - ys[:, 0]) / (xs[:, 1] - xs[:, 0])
    shift = ys[:, 0] - scale * xs[:, 0]
    torch.testing.assert_close(ys, scale[:, None] * xs + shift[:, None], rtol=1e-4, atol=1e-4)
    return scale, shift


def test_each_step_moves_every_channel_by_a_fresh_random_scale_and_shift():
    torch.manual_seed(0)
    layer = StepShift(6)
    x = torch.randn(5, 6, 4, 4)
    draws = [_affine_per_channel(x, layer(x)) for _ in range(50)]
    scales = torch.stack([s for s, _ in draws])
    shifts = torch.stack([b for _, b in draws])
    assert (scales >= 1 - NOISE_SPREAD).all() and (scales <= 1 + NOISE_SPREAD).all()
    assert (shifts.abs() <= NOISE_SHIFT).all()
    assert not torch.equal(draws[0][0], draws[1][0])  # redrawn at every forward pass
    assert scales.std() > 0.2 and shifts.std() > 0.4  # spread over their ranges


def test_in_eval_mode_it_is_the_identity_and_the_noisy_norm_is_bn_then_noise():
    layer = StepShift(3).eval()
    x = torch.randn(4, 3)
    assert torch.equal(layer(x), x)
    noisy = NORMS["batchnorm-noisy"]
    flat, maps = noisy.layer1d(3), noisy.layer(3)
    assert isinstance(flat[0], nn.BatchNorm1d) and isinstance(flat[1], StepShift)
    assert isinstance(maps[0], nn.BatchNorm2d) and not noisy.conv_bias
    maps.eval()
    torch.testing.assert_close(maps(torch.ones(2, 3, 2, 2)), maps[0](torch.ones(2, 3, 2, 2)))
