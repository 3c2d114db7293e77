"""BatchNorm folding gives the same eval outputs with fewer layers."""

import pytest
import torch
from torch import nn

from reslab.models import create_model
from reslab.models.fold import fold_batchnorm


def _randomize_norms(model):
    torch.manual_seed(0)
    for m in model.modules():
        if getattr(m, "running_var", None) is not None:
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def _bn_count(model):
    return sum(getattr(m, "running_var", None) is not None for m in model.modules())


@pytest.mark.parametrize(
    ("name", "norm", "left"),
    [
        ("resnet20", "batchnorm", 0),
        ("resnet50", "batchnorm", 0),
        ("resnet18_cifar", "batchnorm", 0),
        ("plain20", "batchnorm", 0),
        ("resnet20", "batchnorm-scratch", 0),
        ("preact_resnet110", "batchnorm", None),
    ],
)
def test_folded_model_gives_identical_eval_outputs(name, norm, left):
    model = _randomize_norms(create_model(name, norm=norm))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded, n = fold_batchnorm(model)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref, out = model(x), folded(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    if left is None:  # pre-activation: every BN sits before its conv, nothing to fold into
        assert n == 0 and _bn_count(folded) == _bn_count(model)
    else:
        assert n == _bn_count(model) and _bn_count(folded) == left
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched


def test_folded_convs_carry_the_shift_as_bias():
    folded, _ = fold_batchnorm(_randomize_norms(create_model("resnet20")))
    assert all(c.bias is not None for c in folded.modules() if isinstance(c, nn.Conv2d))
