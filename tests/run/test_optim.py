"""Optimizer table and weight-decay parameter groups."""

import pytest
import torch

from reslab.models import create_model
from reslab.run.config import FIELDS, build_config, choices_of
from reslab.run.optim import OPTIMIZERS, build_optimizer, param_groups


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
