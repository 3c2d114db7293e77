"""Gradient flow: which convolutions are measured, and each layer's gradient norm and response
std against the same quantities computed by hand with autograd."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslab.metrics import conv_layers, gradient_ratio, layer_statistics
from reslab.models import create_model


class TwoConvs(nn.Module):
    """conv -> BN -> ReLU -> conv -> ReLU -> pool -> linear, plus a conv the forward never uses."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6, 5)
        self.unused = nn.Conv2d(6, 6, 1)

    def forward(self, x):
        return self.head(self.conv2(F.relu(self.bn(self.conv1(x)))))

    def head(self, h):
        return self.fc(F.relu(h).mean(dim=(2, 3)))


def test_conv_layers_are_the_main_path_in_order_without_projections():
    names = [name for name, _ in conv_layers(create_model("resnet20"))]
    assert len(names) == 19  # 1 stem + 3 stages x 3 blocks x 2
    assert names[:3] == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]
    assert names[-1] == "layer3.2.conv2"
    with_projections = create_model("resnet20", shortcut="B")  # 1x1 convs on 2 shortcuts
    all_convs = [n for n, m in with_projections.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(all_convs) == 21
    assert [name for name, _ in conv_layers(with_projections)] == names


def test_layer_statistics_match_a_hand_computed_backward():
    torch.manual_seed(0)
    model = TwoConvs().double()
    x, y = torch.randn(8, 3, 6, 6, dtype=torch.float64), torch.randint(0, 5, (8,))
    # By hand, in training mode (BN normalizes with the batch's statistics), on a copy.
    ref = copy.deepcopy(model).train()
    h1 = ref.conv1(x)
    h2 = ref.conv2(F.relu(ref.bn(h1)))
    g1, g2 = torch.autograd.grad(
        F.cross_entropy(ref.head(h2), y), [ref.conv1.weight, ref.conv2.weight]
    )
    before = {name: p.detach().clone() for name, p in model.named_parameters()}

    rows = layer_statistics(model.eval(), x, y)

    assert [(r["layer"], r["name"]) for r in rows] == [(1, "conv1"), (2, "conv2"), (3, "unused")]
    first, second, unused = rows
    assert first["grad_norm"] == pytest.approx(g1.norm().item(), rel=1e-10)
    assert second["grad_norm"] == pytest.approx(g2.norm().item(), rel=1e-10)
    assert first["response_std"] == pytest.approx(h1.std().item(), rel=1e-6)  # read in float32
    assert second["response_std"] == pytest.approx(h2.std().item(), rel=1e-6)
    assert second["weight_norm"] == pytest.approx(model.conv2.weight.norm().item(), rel=1e-12)
    # A conv the forward never reaches has no gradient and no response: NaN and None, not 0.
    assert math.isnan(unused["grad_norm"]) and unused["response_std"] is None
    # Nothing left behind: no gradients, no hooks, the weights as they were.
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), name


def test_gradient_ratio_is_first_over_last():
    rows = [{"grad_norm": g} for g in (0.5, 2.0, 4.0)]
    assert gradient_ratio(rows) == 0.125  # vanishing towards the input
    assert gradient_ratio(rows[::-1]) == 8.0  # exploding
    assert gradient_ratio([{"grad_norm": 1.0}, {"grad_norm": 0.0}]) == math.inf


def test_every_conv_of_a_real_resnet_gets_a_finite_gradient_and_response():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    rows = layer_statistics(create_model("resnet20"), x, y)
    assert [r["layer"] for r in rows] == list(range(1, 20))
    assert all(0 < r["grad_norm"] < math.inf and r["response_std"] > 0 for r in rows)
    assert 0 < gradient_ratio(rows) < math.inf
