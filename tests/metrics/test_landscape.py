"""The loss and gradient along a direction, and a layer's gradient change when the layers below
it step first, on small models where the answer is known in closed form or by hand."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reslab.metrics import along, covariate_shift, untouched, weight_layers
from reslab.models import create_model


class Quadratic(nn.Module):
    """L(w) = w^T H w / 2 with H symmetric positive definite: the gradient is H w."""

    def __init__(self, n: int = 6):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=g, dtype=torch.float64)
        self.h = a @ a.T + torch.eye(n, dtype=torch.float64)
        self.w = nn.Parameter(torch.randn(n, generator=g, dtype=torch.float64))

    def loss(self, model=None) -> torch.Tensor:
        return 0.5 * self.w @ self.h @ self.w


def test_down_the_gradient_of_a_quadratic_the_gradient_changes_by_eta_h_g():
    q = Quadratic()
    g = (q.h @ q.w).detach()
    steps = (0.01, 0.05, 0.2)
    path = along(q, q.loss, steps)
    hg = float((q.h @ g).norm())
    rows = zip(steps, path.grad_change, path.distance, path.loss, strict=True)
    for eta, change, distance, loss in rows:
        assert change == pytest.approx(eta * hg, rel=1e-12)
        assert distance == pytest.approx(eta * float(g.norm()), rel=1e-12)
        w = q.w.detach() - eta * g
        assert loss == pytest.approx(float(0.5 * w @ q.h @ w), rel=1e-12)
    # Per unit step the change is ||Hg|| / ||g|| at every step size: the effective beta.
    assert path.beta == pytest.approx(hg / float(g.norm()), rel=1e-12)
    assert path.largest_grad_change == pytest.approx(steps[-1] * hg, rel=1e-12)
    values = (path.start_loss, *path.loss)
    assert path.loss_range == pytest.approx(max(values) - min(values))


def test_along_a_given_direction_and_the_model_is_left_as_it_was():
    q = Quadratic()
    before = q.w.detach().clone()
    d = torch.zeros_like(q.w)
    d[0] = 1.0
    path = along(q, q.loss, (0.5,), direction=[d])
    # The gradient moves by eta * H d, whose norm is the first column's.
    assert path.grad_change[0] == pytest.approx(0.5 * float(q.h[:, 0].norm()), rel=1e-12)
    assert torch.equal(q.w.detach(), before)


class TwoLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.lower = nn.Linear(4, 5)
        self.upper = nn.Linear(5, 3)

    def forward(self, x):
        return self.upper(torch.tanh(self.lower(x)))


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)


def test_covariate_shift_is_the_upper_gradient_after_the_lower_layer_steps():
    torch.manual_seed(0)
    model, (x, y) = TwoLinear(), _batch()

    def loss(m):
        return F.cross_entropy(m(x), y)

    lr = 0.3
    first, second = covariate_shift(model, loss, [model.lower, model.upper], lr)
    assert first.l2 == 0.0 and first.cosine == pytest.approx(1.0)  # nothing below the first
    # By hand: the gradient of the upper weight, then again after the lower layer's step.
    g = torch.autograd.grad(loss(model), model.upper.weight)[0]
    stepped = copy.deepcopy(model)
    grads = torch.autograd.grad(loss(stepped), [stepped.lower.weight, stepped.lower.bias])
    with torch.no_grad():
        stepped.lower.weight -= lr * grads[0]
        stepped.lower.bias -= lr * grads[1]
    g2 = torch.autograd.grad(loss(stepped), stepped.upper.weight)[0]
    assert second.l2 == pytest.approx(float((g - g2).norm()), rel=1e-5)
    assert second.cosine == pytest.approx(float(F.cosine_similarity(g.flatten(), g2.flatten(), 0)))
    assert second.l2 > 0


def test_a_frozen_lower_stack_gives_no_covariate_shift():
    torch.manual_seed(0)
    model, (x, y) = TwoLinear(), _batch()
    model.lower.requires_grad_(False)
    (top,) = covariate_shift(model, lambda m: F.cross_entropy(m(x), y), [model.upper], lr=1.0)
    assert top.l2 == 0.0 and top.cosine == pytest.approx(1.0)


def test_measurements_leave_weights_statistics_mode_and_random_streams_alone():
    torch.manual_seed(0)
    model = create_model("mlp3_sigmoid", norm="batchnorm-noisy")
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    before = copy.deepcopy(model.state_dict())

    def loss(m):
        return F.cross_entropy(m(x), y)

    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    covariate_shift(model, loss, weight_layers(model), lr=0.1)
    along(model, loss, (0.1, 1.0))
    with untouched(model):
        model.eval()
    assert torch.equal(torch.rand(3), expected)  # as if nothing had drawn
    assert model.training
    for key, value in model.state_dict().items():  # BN running statistics included
        assert torch.equal(value, before[key]), key


def test_every_pass_of_one_measurement_sees_the_same_noise():
    # A noisy layer redraws at every forward pass; a step of zero must change nothing.
    torch.manual_seed(0)
    model = create_model("mlp3_sigmoid", norm="batchnorm-noisy")
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    path = along(model, lambda m: F.cross_entropy(m(x), y), (0.0,))
    assert path.grad_change == (0.0,)
    assert path.loss == (path.start_loss,)
    assert math.isnan(path.beta)  # no distance moved: no ratio


def test_weight_layers_are_the_convolutions_and_linear_maps_in_order():
    model = create_model("vgg11_w8")
    layers = weight_layers(model)
    assert [type(m).__name__ for m in layers] == ["Conv2d"] * 8 + ["Linear"]
    params = list(model.parameters())
    positions = [next(i for i, p in enumerate(params) if p is m.weight) for m in layers]
    assert positions == sorted(positions)  # registered input to output
