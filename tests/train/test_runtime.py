"""The torch.compile wrapper: compiled when it can be, eager with a warning when not."""

import warnings

import pytest
import torch
from torch import nn

from reslab.train.runtime import CompiledOrEager


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())


def _failing_backend(gm, example_inputs):
    raise RuntimeError("no working compiler here")


def test_a_failing_compiler_falls_back_to_eager_once():
    ref, net = _net(), _net()
    x = torch.randn(2, 3, 8, 8)
    wrapped = CompiledOrEager(net, backend=_failing_backend)
    with pytest.warns(UserWarning, match="torch.compile failed.*no working compiler here"):
        out = wrapped(x)
    torch.testing.assert_close(out, ref(x))
    # The failed attempt ran nothing: BN statistics moved exactly once, as in eager mode.
    torch.testing.assert_close(net[1].running_mean, ref[1].running_mean)
    assert net[1].num_batches_tracked.item() == 1
    assert wrapped.compiled is None
    out.sum().backward()  # gradients reach the module's own parameters
    assert net[0].weight.grad is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second attempt, no second warning
        torch.testing.assert_close(wrapped(x), ref(x))


def test_a_working_backend_is_used():
    calls = []

    def backend(gm, example_inputs):
        calls.append(gm)
        return gm.forward

    net = _net()
    wrapped = CompiledOrEager(net, backend=backend)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(wrapped(x), _net()(x))
    assert calls and wrapped.compiled is not None


def test_errors_of_the_module_itself_are_not_swallowed():
    wrapped = CompiledOrEager(_net(), backend="eager")
    with pytest.raises(RuntimeError):
        wrapped(torch.randn(2, 5, 8, 8))  # 5 channels into a 3-channel conv
