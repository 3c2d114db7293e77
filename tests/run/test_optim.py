"""Optimizer table and weight-decay parameter groups."""

import copy

import pytest
import torch

from reslab.models import create_model
from reslab.run.config import FIELDS, build_config, choices_of
from reslab.run.muon import hidden_weights
from reslab.run.optim import OPTIMIZERS, build_optimizer, muon_groups, param_groups


def test_the_config_allows_exactly_the_optimizer_table():
    assert choices_of(FIELDS["optimizer"]) == list(OPTIMIZERS)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_takes_a_step(name):
    model = create_model("resnet20")
    opt = build_optimizer(model, build_config({"epochs": 1, "optimizer": name, "lr": 0.01}))
    before = model.fc.weight.detach().clone()
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    opt.step()
    assert not torch.equal(before, model.fc.weight)


def test_no_decay_groups_hold_norms_and_biases():
    model = create_model("resnet20")
    decay, no_decay = param_groups(model, 5e-4, no_decay_norm_bias=True)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    n_norm_and_bias = sum(1 for n, _ in model.named_parameters() if "bn" in n or n.endswith("bias"))
    assert len(no_decay["params"]) == n_norm_and_bias
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    (single,) = param_groups(model, 5e-4, no_decay_norm_bias=False)
    assert len(single["params"]) == len(list(model.parameters()))


def _config(**overrides):
    return build_config({"epochs": 1, "lr": 0.05, **overrides})


@pytest.mark.parametrize("no_decay_norm_bias", [False, True])
def test_muon_groups_put_the_hidden_weights_last_at_muon_lr(no_decay_norm_bias):
    model = create_model("resnet20")
    config = _config(muon_lr=0.03, weight_decay=5e-4, no_decay_norm_bias=no_decay_norm_bias)
    *plain, hidden = muon_groups(model, config)
    assert hidden["muon"] and hidden["lr"] == 0.03 and hidden["weight_decay"] == 5e-4
    assert list(hidden["params"]) == list(hidden_weights(model).values())
    plain_ids = [id(p) for g in plain for p in g["params"]]
    every = {id(p) for p in model.parameters()}
    assert sorted(plain_ids + [id(p) for p in hidden["params"]]) == sorted(every)
    optimizer = build_optimizer(model, _config(optimizer="muon", lr=0.2))
    assert optimizer.param_groups[0]["lr"] == 0.2  # the lr a run logs is --lr
    if no_decay_norm_bias:  # norm gains and biases: on the plain optimizer, without decay
        assert [g["weight_decay"] for g in plain] == [5e-4, 0.0]
        assert all(p.ndim == 1 for p in plain[1]["params"])


def test_muon_steps_the_first_layer_classifier_and_norms_as_nesterov_does():
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    moved = {}
    for name in ("nesterov", "muon"):
        torch.manual_seed(1)
        model = create_model("resnet20_w8")
        _train(model, build_optimizer(model, _config(optimizer=name, weight_decay=1e-3)), x, 1)
        moved[name] = dict(model.named_parameters())
    hidden = hidden_weights(model)
    for n, p in moved["muon"].items():
        assert torch.equal(p, moved["nesterov"][n]) == (n not in hidden), n


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_an_optimizer_reloaded_from_its_state_dict_steps_on_identically(name):
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    config = _config(optimizer=name, lr=0.01)
    torch.manual_seed(0)
    model = create_model("resnet20_w8")
    opt = build_optimizer(model, config)
    _train(model, opt, x, 2)
    twin = create_model("resnet20_w8")
    twin.load_state_dict(model.state_dict())
    reloaded = build_optimizer(twin, config)
    reloaded.load_state_dict(copy.deepcopy(opt.state_dict()))  # as from a checkpoint file
    _train(model, opt, x, 2)
    _train(twin, reloaded, x, 2)
    for (n, a), b in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), n


def _train(model, opt, x, steps):
    for _ in range(steps):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
