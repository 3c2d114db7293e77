"""Batch Normalization written from first principles (Ioffe & Szegedy 2015, arXiv:1502.03167).

Forward and backward follow the paper's Algorithm 1 and Sec. 3 formulas; only the running-stat
bookkeeping mirrors torch.nn.BatchNorm so that state dicts move freely between the two.
"""

from __future__ import annotations

import torch
from torch import nn


def _reduce_dims(x: torch.Tensor) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.dim()))  # every dim but the channel


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.view(1, -1, *([1] * (x.dim() - 2)))


class BatchNormFunction(torch.autograd.Function):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta with batch statistics and a hand-written
    backward. Returns (y, batch mean, biased batch variance)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        dims = _reduce_dims(x)
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
        inv_std = torch.rsqrt(var + eps)
        x_hat = (x - _per_channel(mean, x)) * _per_channel(inv_std, x)
        y = x_hat
        if weight is not None:
            y = x_hat * _per_channel(weight, x) + _per_channel(bias, x)
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        x_hat, inv_std, weight = ctx.saved_tensors
        dims = _reduce_dims(dy)
        m = dy.numel() // dy.shape[1]  # values per channel
        sum_dy = dy.sum(dims)
        sum_dy_xhat = (dy * x_hat).sum(dims)
        dx = dweight = dbias = None
        if ctx.needs_input_grad[0]:
            # dL/dx_hat = dy * gamma; the paper's three terms collapse to
            # dx = gamma * inv_std / m * (m * dy - sum(dy) - x_hat * sum(dy * x_hat)).
            scale = inv_std / m if weight is None else weight * inv_std / m
            dx = _per_channel(scale, dy) * (
                m * dy - _per_channel(sum_dy, dy) - x_hat * _per_channel(sum_dy_xhat, dy)
            )
        if weight is not None and ctx.needs_input_grad[1]:
            dweight = sum_dy_xhat
        if weight is not None and ctx.needs_input_grad[2]:
            dbias = sum_dy
        return dx, dweight, dbias, None


class _BatchNorm(nn.Module):
    """Shared logic; subclasses only say which input ranks they accept."""

    _ranks: tuple[int, ...] = ()
    _shape_text = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, **factory))
            self.bias = nn.Parameter(torch.empty(num_features, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() not in self._ranks:
            raise ValueError(
                f"{type(self).__name__} expects {self._shape_text} input, "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) got {x.shape[1]} channels"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats:
            return self._normalize_with_running_stats(x)
        if x.numel() // x.shape[1] <= 1:
            raise ValueError(
                f"BatchNorm needs more than one value per channel in training mode, got input of "
                f"shape {tuple(x.shape)}: the variance of a single value is undefined. Drop the "
                "last partial batch (drop_last=True), use a batch size > 1, or call model.eval() "
                "to normalize with the running statistics"
            )
        # Low-precision inputs (autocast) are normalized in float32 for stable statistics.
        compute = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        weight = None if self.weight is None else self.weight.to(compute)
        bias = None if self.bias is None else self.bias.to(compute)
        y, mean, var = BatchNormFunction.apply(x.to(compute), weight, bias, self.eps)
        if self.training and self.track_running_stats:
            self._update_running_stats(mean, var, x.numel() // x.shape[1])
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean, var, n: int) -> None:
        self.num_batches_tracked += 1
        # momentum=None: the cumulative average over all batches seen, as in torch.
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (n / (n - 1))  # running_var tracks the unbiased estimate (paper, Alg. 2)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)

    def _normalize_with_running_stats(self, x: torch.Tensor) -> torch.Tensor:
        # Inference is an affine map per channel; autograd handles its gradient exactly.
        scale = torch.rsqrt(self.running_var + self.eps)
        shift = -self.running_mean * scale
        if self.affine:
            scale, shift = scale * self.weight, shift * self.weight + self.bias
        return x * _per_channel(scale.to(x.dtype), x) + _per_channel(shift.to(x.dtype), x)


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs; drop-in for torch.nn.BatchNorm1d."""

    _ranks = (2, 3)
    _shape_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs; drop-in for torch.nn.BatchNorm2d."""

    _ranks = (4,)
    _shape_text = "(N, C, H, W)"
