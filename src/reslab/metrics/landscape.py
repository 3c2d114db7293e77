"""The loss landscape seen from one point of training: how the loss and its gradient change
along a direction (Santurkar et al. 2018, arXiv:1805.11604, Sec. 3.1, Fig. 4), and how much a
layer's gradient changes when the layers below it take their step first, their definition of
internal covariate shift (Sec. 2.2, Definition 2.1).

Every measurement takes the loss as a function of the model (`loss(model)`: a forward pass on a
fixed batch) and leaves the model as it found it: parameters, buffers (BN running statistics
move with every forward pass in training mode), training mode and the random streams. Each
forward pass of one measurement sees the same random draws (a noisy layer's noise, dropout),
so the measurement reflects a change of weights, not a new draw."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

Loss = Callable[[nn.Module], torch.Tensor]


@contextlib.contextmanager
def untouched(model: nn.Module) -> Iterator[Callable[[], None]]:
    """Restore the model's parameters, buffers and mode, and the random streams, on leaving.
    Yields `redraw`, which resets the random streams to where they were on entering, so that
    every forward pass after it draws the same random numbers."""
    state = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    was_training = model.training
    devices = [d for d in {p.device for p in model.parameters()} if d.type == "cuda"]
    with torch.random.fork_rng(devices=devices):
        rng = torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]

        def redraw() -> None:
            torch.set_rng_state(rng[0])
            for device, s in zip(devices, rng[1], strict=True):
                torch.cuda.set_rng_state(s, device)

        try:
            yield redraw
        finally:
            with torch.no_grad():
                for key, value in model.state_dict(keep_vars=True).items():
                    value.copy_(state[key])
            model.train(was_training)


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _gradient(model: nn.Module, loss: Loss, redraw, params: list) -> tuple[float, list]:
    """The loss and its gradient with respect to `params` (zeros where it does not reach)."""
    redraw()
    value = loss(model)
    grads = torch.autograd.grad(value, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return float(value.detach()), grads  # host-device sync


def _norm(tensors: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float(t.double().square().sum()) for t in tensors))  # host-device sync


@dataclass(frozen=True)
class Along:
    """The loss and its gradient at w + eta * d for each step size eta, against w."""

    steps: tuple[float, ...]  # eta, in units of the direction d
    distance: tuple[float, ...]  # ||eta * d||, in parameter space
    loss: tuple[float, ...]  # the loss at each step
    grad_change: tuple[float, ...]  # ||grad at the step - grad at w||
    start_loss: float  # the loss at w

    @property
    def loss_range(self) -> float:
        """How much the loss varies over the steps and the start ("loss landscape")."""
        values = (self.start_loss, *self.loss)
        return max(values) - min(values)

    @property
    def largest_grad_change(self) -> float:
        """The largest change of the gradient over the steps ("gradient predictiveness")."""
        return max(self.grad_change)

    @property
    def beta(self) -> float:
        """The largest gradient change per unit of distance moved ("effective beta-smoothness")."""
        pairs = zip(self.grad_change, self.distance, strict=True)
        return max(c / d if d > 0 else math.nan for c, d in pairs)


def along(
    model: nn.Module,
    loss: Loss,
    steps: Sequence[float],
    direction: Sequence[torch.Tensor] | None = None,
) -> Along:
    """The loss and gradient at w + eta * direction for each eta in `steps`; the direction
    (one tensor per trainable parameter) defaults to down the gradient, -grad at w. For a
    quadratic loss, the gradient changes by eta * ||H d||: beta is ||H d|| / ||d||."""
    params = _trainable(model)
    with untouched(model) as redraw:
        start = [p.detach().clone() for p in params]
        start_loss, grad = _gradient(model, loss, redraw, params)
        d = [-g for g in grad] if direction is None else list(direction)
        rows = []
        for eta in steps:
            with torch.no_grad():
                for p, w, v in zip(params, start, d, strict=True):
                    p.copy_(w + eta * v)
            value, moved = _gradient(model, loss, redraw, params)
            change = _norm([a - b for a, b in zip(moved, grad, strict=True)])
            rows.append((_norm([eta * v for v in d]), value, change))
    distance, values, changes = zip(*rows, strict=True) if rows else ((), (), ())
    return Along(tuple(steps), distance, values, changes, start_loss)


@dataclass(frozen=True)
class Shift:
    """How a layer's gradient changed once the layers below it took their step."""

    l2: float  # ||G - G'||
    cosine: float  # cos(G, G'); NaN where either is zero


def covariate_shift(
    model: nn.Module, loss: Loss, layers: Sequence[nn.Module], lr: float
) -> list[Shift]:
    """Internal covariate shift as Santurkar et al. define it (Sec. 2.2): for each layer (input
    to output), G is the gradient of the loss with respect to its weight; G' the same gradient
    after every trainable parameter below the layer has taken a plain gradient step of size
    `lr` on the same batch, the layer and those above it unchanged. "Below" is registration
    order: the parameters `model.parameters()` lists before the layer's weight (networks here
    register their modules input to output). The first layer has nothing below it: zero shift."""
    params = _trainable(model)
    index = {id(p): k for k, p in enumerate(params)}
    with untouched(model) as redraw:
        start = [p.detach().clone() for p in params]
        _, grad = _gradient(model, loss, redraw, params)
        shifts = []
        for layer in layers:
            k = index[id(layer.weight)]
            with torch.no_grad():
                for p, w, g in zip(params[:k], start[:k], grad[:k], strict=True):
                    p.copy_(w - lr * g)
            _, (after,) = _gradient(model, loss, redraw, [layer.weight])
            with torch.no_grad():
                for p, w in zip(params[:k], start[:k], strict=True):
                    p.copy_(w)
            shifts.append(_compare(grad[k], after))
    return shifts


def _compare(g: torch.Tensor, after: torch.Tensor) -> Shift:
    a, b = g.double().flatten(), after.double().flatten()
    norms = float(a.norm() * b.norm())  # host-device sync
    cosine = float(a @ b) / norms if norms > 0 else math.nan
    return Shift(float((a - b).norm()), cosine)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The convolutions and linear maps of a network, in registration order (input to output
    for the networks here): the layers whose covariate shift is measured."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
