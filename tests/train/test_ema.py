"""reslab's EMA against torch's AveragedModel: the same numbers, the same state dict."""

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from reslab.train.ema import EMA


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.LazyLinear(2))  # fmt: skip


def _train_a_little(model: nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    torch.manual_seed(seed)
    model(torch.randn(8, 3, 6, 6)).square().mean().backward()
    opt.step()
    opt.zero_grad()


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_matches_torchs_averaged_model_step_by_step():
    model = _net()
    model(torch.randn(1, 3, 6, 6))  # materialize the lazy layer
    ours = EMA(model, 0.9)
    ref = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(5):
        _train_a_little(model, opt, step)
        ours.update_parameters(model)
        ref.update_parameters(model)
        assert _same(ours, ref), f"differs after update {step + 1}"
    assert int(ours.n_averaged) == 5
    # BN statistics are averaged too, and the integer batch counter follows the model's.
    assert not torch.equal(ours.module[1].running_mean, model[1].running_mean)


def test_a_loaded_state_continues_exactly():
    model = _net()
    model(torch.randn(1, 3, 6, 6))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    straight = EMA(model, 0.9)
    for step in range(3):
        _train_a_little(model, opt, step)
        straight.update_parameters(model)
    # A checkpoint of torch's AveragedModel (reslab's older runs) loads into EMA, and on.
    ref = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    ref.load_state_dict(straight.state_dict())
    resumed = EMA(_net_like(model), 0.9)
    resumed.load_state_dict(ref.state_dict())
    for step in range(3, 5):
        _train_a_little(model, opt, step)
        straight.update_parameters(model)
        resumed.update_parameters(model)
    assert _same(straight, resumed)


def _net_like(model: nn.Module) -> nn.Module:
    copy = _net()
    copy(torch.randn(1, 3, 6, 6))
    copy.load_state_dict(model.state_dict())
    return copy
