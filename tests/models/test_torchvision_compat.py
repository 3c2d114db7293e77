"""The ImageNet ResNets are drop-in compatible with torchvision's: same keys, same outputs."""

import pytest
import torch
import torchvision

from reslab.models import create_model


@pytest.mark.parametrize(
    "name",
    ["resnet18", "resnet34", "resnet50", *(pytest.param(n, marks=pytest.mark.slow)
                                           for n in ("resnet101", "resnet152"))],
)  # fmt: skip
def test_torchvision_weights_load_and_agree(name):
    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)(weights=None).eval()
    # Non-trivial running statistics, so eval mode really exercises them.
    for m in tv.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ours = create_model(name).eval()
    assert list(ours.state_dict()) == list(tv.state_dict())
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=1e-5, atol=1e-5)
    tv.load_state_dict(ours.state_dict(), strict=True)
