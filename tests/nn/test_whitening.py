"""The patch-whitening first layer against a whitening computed by hand in numpy."""

import numpy as np
import torch
import torch.nn.functional as F

from reslab.nn import PatchWhitening


def _images(n=300, seed=0) -> torch.Tensor:
    """Images whose channels and neighbouring pixels are correlated, as real ones are."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 12, 12, generator=g)
    x[:, 1] += 0.9 * x[:, 0]
    x[:, :, :, 1:] += 0.7 * x[:, :, :, :-1].clone()
    return x


def test_the_filters_invert_the_patch_covariance():
    """Sum over the filters of f f^T is (C + eps I)^-1 for the patch covariance C: a check of the
    whole whitening that no eigenvector's sign or order can pass by chance."""
    x, layer = _images(), PatchWhitening(3, kernel_size=2, eps=1e-3)
    layer.fit_(x)
    patches = F.unfold(x.double(), 2).transpose(1, 2).reshape(-1, 12).numpy()
    expected = np.linalg.inv(np.cov(patches.T) + 1e-3 * np.eye(12))
    half = layer.weight[:12].double().reshape(12, 12).numpy()
    np.testing.assert_allclose(half.T @ half, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(layer.weight[12:], -layer.weight[:12])  # each filter's negative


def test_the_output_is_white_and_the_layer_frozen():
    x = _images()
    layer = PatchWhitening(3, eps=1e-6).fit_(x)
    out = layer(x)
    assert out.shape == (300, 24, 11, 11)  # no padding: 12 - 2 + 1
    channels = out[:, :12].permute(1, 0, 2, 3).reshape(12, -1).double()
    torch.testing.assert_close(torch.cov(channels), torch.eye(12, dtype=torch.float64),
                               atol=2e-3, rtol=0)  # fmt: skip
    assert not layer.weight.requires_grad and layer.bias.requires_grad
    assert [p for p in layer.parameters() if p.requires_grad] == [layer.bias]


def test_an_unfitted_layer_outputs_zeros():
    assert PatchWhitening(1)(torch.randn(2, 1, 5, 5)).abs().sum() == 0
