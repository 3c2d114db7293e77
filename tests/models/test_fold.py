"""BatchNorm folding gives the same eval outputs with fewer layers and leaves the input alone."""

import pytest
import torch
from torch import nn

from reslab.models import create_model
from reslab.models.fold import fold_batchnorm
from reslab.nn import BatchNorm2d as ScratchBatchNorm2d


def _randomize_norms(model):
    """Non-trivial running statistics and affine parameters, so a wrong fold shows."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "running_var", None) is not None:
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def _bn_count(model):
    return sum(isinstance(m, (nn.BatchNorm2d, ScratchBatchNorm2d)) for m in model.modules())


def _check_same_outputs(model, folded, size=32):
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        ref, out = model(x), folded(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())


@pytest.mark.parametrize(
    ("name", "norm", "size"),
    [
        ("resnet20", "batchnorm", 32),
        ("resnet50", "batchnorm", 64),
        ("resnet18_cifar", "batchnorm", 32),
        ("plain20", "batchnorm", 32),
        ("resnet20", "batchnorm-scratch", 32),
    ],
)
def test_post_activation_nets_fold_every_bn(name, norm, size):
    model = _randomize_norms(create_model(name, norm=norm))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded, n = fold_batchnorm(model)
    _check_same_outputs(model, folded, size)
    assert n == _bn_count(model) > 0 and _bn_count(folded) == 0
    assert not folded.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    assert _bn_count(model) == n


@pytest.mark.parametrize(
    ("name", "per_block"),
    [("preact_resnet110", 1), pytest.param("preact_resnet164", 2, marks=pytest.mark.slow)],
)
def test_pre_activation_nets_fold_only_bns_that_follow_a_conv(name, per_block):
    model = _randomize_norms(create_model(name))
    folded, n = fold_batchnorm(model)
    _check_same_outputs(model, folded)
    # conv1 -> bn2 (and conv2 -> bn3 in bottlenecks) fold; each block's bn1 and the final norm
    # follow an addition and stay.
    assert n == per_block * len(model.blocks())
    assert _bn_count(folded) == _bn_count(model) - n == len(model.blocks()) + 1


def test_folded_convs_carry_the_shift_as_bias():
    folded, _ = fold_batchnorm(_randomize_norms(create_model("resnet20")))
    assert all(c.bias is not None for c in folded.modules() if isinstance(c, nn.Conv2d))


@pytest.mark.parametrize("norm", ["groupnorm", "none"])
def test_nothing_to_fold_without_batchnorm(norm):
    model = create_model("resnet20", norm=norm).eval()
    folded, n = fold_batchnorm(model)
    assert n == 0
    _check_same_outputs(model, folded)


def test_bn_without_running_stats_is_skipped():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.BatchNorm2d(4, track_running_stats=False)).eval()
    folded, n = fold_batchnorm(model)
    assert n == 0 and isinstance(folded[1], nn.BatchNorm2d)


def test_training_model_keeps_its_mode():
    model = _randomize_norms(create_model("resnet20")).train()
    folded, _ = fold_batchnorm(model)
    assert model.training and not folded.training
