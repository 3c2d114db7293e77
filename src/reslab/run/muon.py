"""Muon (Jordan 2024, "Muon: An optimizer for hidden layers in neural networks",
kellerjordan.github.io/posts/muon): momentum whose update matrix is orthogonalized before the
step, for the hidden conv and linear weights; Nesterov SGD for every other parameter.

Muon works on matrices: a conv filter bank (out, in, kh, kw) is the matrix (out, in*kh*kw), one
row per output channel. The network's first layer (its input is pixels, not features) and its
classifier stay off Muon, as the post and the Muon repository advise; the CIFAR-10 speed record
airbench94_muon likewise freezes its first conv and trains its head with Nesterov SGD.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

# The post's quintic Newton-Schulz iteration: coefficients chosen for the steepest slope at zero,
# so that 5 steps lift small singular values close to 1 (into roughly [0.7, 1.2], not onto 1).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
NS_EPS = 1e-7


def orthogonalize(g: torch.Tensor, steps: int = NS_STEPS, eps: float = NS_EPS) -> torch.Tensor:
    """About U V^T for the matrix g = U S V^T: g with every singular value pushed near 1.

    Computed in g's own dtype (fp32 in reslab: parameters and their gradients stay fp32 under
    autocast), not in the post's bf16: a ResNet's matrices are small next to its convolutions."""
    a, b, c = NS_COEFFICIENTS
    wide = g.size(0) <= g.size(1)
    x = g if wide else g.T  # x @ x.T is then the smaller of the two Gram matrices
    # The Frobenius norm bounds the spectral norm: every singular value starts in [0, 1].
    x = x / (x.norm() + eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x if wide else x.T


def update_scale(rows: int, cols: int) -> float:
    """The factor on Muon's lr for a (rows, cols) matrix: sqrt(max(1, rows/cols)), the post's
    original convention (torch.optim.Muon's adjust_lr_fn="original"). An update's entries then
    have RMS about lr/sqrt(cols) whatever the shape: lr/sqrt(fan-in) for a conv or a linear.
    A conv's rows and cols are those of its matrix view (out, in*kh*kw)."""
    return math.sqrt(max(1.0, rows / cols))


def hidden_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters Muon updates, by name: each trainable one of two or more dimensions, except
    the first layer's (the first conv or linear module, which reads the input) and the
    classifier's (the last linear module). Models register their layers in the order they run."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    classifier = [m for m in layers if isinstance(m, nn.Linear)][-1:]
    outside = {id(p) for m in layers[:1] + classifier for p in m.parameters()}
    return {
        name: p
        for name, p in model.named_parameters()
        if p.requires_grad and p.ndim >= 2 and id(p) not in outside
    }


Update = Callable[[torch.Tensor, torch.Tensor, dict, dict], None]


def muon_update(p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
    """One Muon step on `p`, with torch.optim.Muon's arithmetic: an exponential average of the
    gradients, a Nesterov look-ahead along it, orthogonalization, decoupled weight decay."""
    m = group["momentum"]
    if "momentum_buffer" not in state:
        state["momentum_buffer"] = torch.zeros_like(grad)
    buf = state["momentum_buffer"]
    buf.lerp_(grad, 1 - m)
    matrix = grad.lerp(buf, m).reshape(len(grad), -1)
    o = orthogonalize(matrix).reshape(p.shape)
    p.mul_(1 - group["lr"] * group["weight_decay"])
    p.add_(o, alpha=-group["lr"] * update_scale(*matrix.shape))


def nesterov_update(p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
    """One step of torch.optim.SGD(nesterov=True, dampening=0), weight decay added to the
    gradient as there: the same arithmetic as reslab's `nesterov` optimizer."""
    m, wd = group["momentum"], group["weight_decay"]
    d = grad.add(p, alpha=wd) if wd else grad
    if m:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = d.clone()
        else:
            buf.mul_(m).add_(d)
        d = d.add(buf, alpha=m)
    p.add_(d, alpha=-group["lr"])


class Muon(torch.optim.Optimizer):
    """Muon on the groups marked `muon=True`, Nesterov SGD on the others. Each group carries its
    own lr, momentum and weight_decay; the state of either kind is one momentum buffer per
    parameter, so state_dict() and load_state_dict() are torch's own."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float,
        momentum: float,
        weight_decay: float = 0.0,
    ):
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "muon": False}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            update: Update = muon_update if group["muon"] else nesterov_update
            for p in group["params"]:
                if p.grad is not None:
                    update(p, p.grad, self.state[p], group)
        return loss
