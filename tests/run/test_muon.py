"""Muon: the Newton-Schulz orthogonalization, the step against torch.optim.Muon and
torch.optim.SGD, conv filters as matrices, and which parameters of a network Muon takes."""

import functools
import math

import pytest
import torch
from torch import nn

from reslab.models import create_model, get_spec, list_models
from reslab.run import muon
from reslab.run.muon import NS_COEFFICIENTS, NS_STEPS, Muon, hidden_weights, orthogonalize


def _params(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [nn.Parameter(torch.randn(s, dtype=torch.float64, generator=gen)) for s in shapes]


def _step(optimizers, params_per_optimizer, gen):
    """One step of each optimizer, every one given the same random gradients."""
    grads = [torch.randn(p.shape, dtype=p.dtype, generator=gen) for p in params_per_optimizer[0]]
    for opt, params in zip(optimizers, params_per_optimizer, strict=True):
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        opt.step()


@pytest.mark.skipif(
    not hasattr(torch.optim, "Muon"), reason="this torch has no torch.optim.Muon (added in 2.9)"
)
def test_muon_steps_as_torch_muon_does(monkeypatch):
    # torch.optim.Muon orthogonalizes in bf16, whose rounding would hide any small error here:
    # with its cast made a copy, both run in float64 and must agree to rounding. Both with eps 0:
    # torch clamps the norm at eps where the post (and reslab) adds it, 1e-7 / |g| apart.
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda self: self.clone())
    monkeypatch.setattr(muon, "orthogonalize", functools.partial(orthogonalize, eps=0.0))
    shapes = [(8, 20), (20, 8), (12, 12)]  # wide, tall (lr scaled by sqrt(20/8)), square
    ours, theirs = _params(shapes), _params(shapes)
    settings = dict(lr=0.03, momentum=0.9, weight_decay=0.1)
    mine = Muon([{"params": ours, "muon": True}], **settings)
    torch_muon = torch.optim.Muon(
        theirs, nesterov=True, adjust_lr_fn="original", eps=0.0, **settings
    )
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        _step([mine, torch_muon], [ours, theirs], gen)
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
            buffers = mine.state[a]["momentum_buffer"], torch_muon.state[b]["momentum_buffer"]
            torch.testing.assert_close(*buffers, rtol=0, atol=1e-12)
    assert not torch.equal(ours[0], _params(shapes)[0])  # the steps moved the weights


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_plain_groups_step_as_torch_nesterov_sgd(weight_decay):
    shapes = [(5,), (4, 3), (2, 3, 3, 3)]
    ours, theirs = _params(shapes), _params(shapes)
    settings = dict(lr=0.1, momentum=0.9, weight_decay=weight_decay)
    mine = Muon(ours, **settings)  # groups are plain unless marked muon=True
    sgd = torch.optim.SGD(theirs, nesterov=True, **settings)
    gen = torch.Generator().manual_seed(2)
    for _ in range(4):
        _step([mine, sgd], [ours, theirs], gen)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 4, 3, 3), (16, 4, 1, 1)])  # 8x36; 16x4 (scaled by 2)
def test_a_conv_filter_bank_steps_as_its_matrix(shape):
    (conv,) = _params([shape])
    matrix = nn.Parameter(conv.detach().reshape(shape[0], -1).clone())
    opt = Muon([{"params": [conv, matrix], "muon": True}], lr=0.05, momentum=0.9, weight_decay=0.1)
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        g = torch.randn(shape, dtype=torch.float64, generator=gen)
        conv.grad, matrix.grad = g.clone(), g.reshape(shape[0], -1).clone()
        opt.step()
    torch.testing.assert_close(conv.reshape(shape[0], -1), matrix, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(32, 96), (96, 32), (16, 16), (64, 576)])
def test_orthogonalize_puts_singular_values_in_the_quintic_band(shape):
    g = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    o = orthogonalize(g)
    s = torch.linalg.svdvals(o)
    # The coefficients buy speed with convergence: the values oscillate about 1, not onto it,
    # from about 0.7 up to the polynomial's peak on [0, 1] (1.2024, at x = 0.5545).
    assert s.min() > 0.65 and s.max() < 1.203, s
    # Each singular value goes through the scalar iteration; the singular vectors stay g's.
    u, sigma, vh = torch.linalg.svd(g, full_matrices=False)
    torch.testing.assert_close(o, u @ torch.diag(_scalar_iteration(sigma)) @ vh)


def _scalar_iteration(sigma: torch.Tensor) -> torch.Tensor:
    a, b, c = NS_COEFFICIENTS
    x = sigma / (sigma.square().sum().sqrt() + 1e-7)
    for _ in range(NS_STEPS):
        x = a * x + b * x**3 + c * x**5
    return x


def test_orthogonalize_ignores_the_gradient_scale():
    g = torch.randn(6, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(orthogonalize(1e3 * g), orthogonalize(g))


def test_resnet20_and_resnet9_keep_stem_classifier_and_vectors_off_muon():
    names = set(hidden_weights(create_model("resnet20")))
    # 3 stages of 3 blocks of 2 convs; option A shortcuts have no weights.
    assert names == {f"layer{i}.{j}.conv{k}.weight" for i in (1, 2, 3) for j in (0, 1, 2)
                     for k in (1, 2)}  # fmt: skip
    names = set(hidden_weights(create_model("resnet9_w16")))
    assert "stem.0.weight" not in names and "fc.weight" not in names and len(names) == 7
    model = create_model("resnet9_w16")
    params = dict(model.named_parameters())
    convs = {n for n, p in params.items() if p.ndim == 4}
    assert names == convs - {"stem.0.weight"}


def test_frozen_parameters_are_left_out():
    model = create_model("resnet20")
    model.layer1[0].conv1.weight.requires_grad_(False)
    assert "layer1.0.conv1.weight" not in hidden_weights(model)


@pytest.mark.parametrize("name", list_models())
def test_every_model_keeps_its_input_layer_and_classifier_off_muon(name):
    """The first layer is found as the first registered conv or linear module, the classifier as
    the last linear one: each model must register its layers in the order they run."""
    channels, classes = 5, 7  # sizes no layer of the zoo has otherwise
    with torch.device("meta"):
        model = create_model(name, num_classes=classes, in_channels=channels)
    hidden = {id(p) for p in hidden_weights(model).values()}
    size = math.prod(get_spec(name).input_size[1:])
    for m in model.modules():
        reads_input = (isinstance(m, nn.Conv2d) and m.in_channels == channels) or (
            isinstance(m, nn.Linear) and m.in_features == channels * size
        )
        classifies = isinstance(m, nn.Linear) and m.out_features == classes
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert (id(m.weight) in hidden) != (reads_input or classifies), (name, m)
