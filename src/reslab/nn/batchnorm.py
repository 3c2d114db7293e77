"""Batch Normalization written from first principles.

Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal
Covariate Shift", ICML 2015 (arXiv:1502.03167). The forward pass is the paper's Algorithm 1 and the
backward pass its Sec. 3 chain-rule formulas, written out by hand rather than left to autograd.
Only the running-statistics bookkeeping follows torch.nn.BatchNorm (momentum convention, cumulative
average for momentum=None, buffer names) so state dicts move freely between the two.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable


def _reduce_dims(x: torch.Tensor) -> tuple[int, ...]:
    # Statistics are per channel (dim 1), shared over the batch and every spatial position.
    return (0, *range(2, x.dim()))


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.view(1, -1, *([1] * (x.dim() - 2)))


def _values_per_channel(x: torch.Tensor) -> int:
    return math.prod((x.shape[0], *x.shape[2:]))


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    # Under autocast (or a .half() model) a float16/bfloat16 batch would lose most of its
    # variance's precision to rounding in the sums; accumulate in float32 and cast back at the end.
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm, y = gamma * (x - mu_B) / sqrt(sigma_B^2 + eps) + beta, with the
    paper's analytic backward. ``weight``/``bias`` may be None. Returns ``(y, mu_B, sigma_B^2)``
    (biased variance); the statistics are non-differentiable and only feed the running averages.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        dims = _reduce_dims(x)
        var, mean = torch.var_mean(x, dims, correction=0)
        inv_std = torch.rsqrt(var + eps)
        x_hat = (x - _per_channel(mean, x)) * _per_channel(inv_std, x)
        # Never hand back the saved x_hat itself: an in-place op on the output (ReLU(inplace=True)
        # after an affine=False layer) would then corrupt what backward needs.
        y = x_hat.clone() if weight is None else x_hat * _per_channel(weight, x)
        if bias is not None:
            y = y + _per_channel(bias, x)
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable  # x_hat is saved detached, so a second derivative would be silently wrong
    def backward(ctx, dy, _dmean, _dvar):
        x_hat, inv_std, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dims = _reduce_dims(dy)
        sum_dy = dy.sum(dims) if need_x or need_b else None
        sum_dy_xhat = (dy * x_hat).sum(dims) if need_x or need_w else None
        dx = None
        if need_x:
            m = _values_per_channel(dy)
            # Paper, Sec. 3, with dL/dx_hat = dy * gamma. gamma is constant per channel, so it
            # factors out of both sums and the three terms collapse to
            # dx = gamma * inv_std / m * (m * dy - sum(dy) - x_hat * sum(dy * x_hat)).
            scale = inv_std / m if weight is None else weight * inv_std / m
            centred = m * dy - _per_channel(sum_dy, dy) - x_hat * _per_channel(sum_dy_xhat, dy)
            dx = _per_channel(scale, dy) * centred
        # dgamma = sum(dy * x_hat), dbeta = sum(dy): both already computed for dx.
        return dx, sum_dy_xhat if need_w else None, sum_dy if need_b else None, None


class _BatchNorm(nn.Module):
    """Shared logic of BatchNorm1d/2d; subclasses only state which input ranks they accept."""

    _version = 2  # as torch's: version 2 added num_batches_tracked (see _load_from_state_dict)
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
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        weight = nn.Parameter(torch.empty(num_features, **factory)) if affine else None
        self.register_parameter("weight", weight)
        shift = nn.Parameter(torch.empty(num_features, **factory)) if affine and bias else None
        self.register_parameter("bias", shift)
        # Buffers exist (possibly as None) either way so state_dict keys match torch's exactly.
        on = track_running_stats
        self.register_buffer("running_mean", torch.zeros(num_features, **factory) if on else None)
        self.register_buffer("running_var", torch.ones(num_features, **factory) if on else None)
        count = torch.tensor(0, dtype=torch.long, device=device) if on else None
        self.register_buffer("num_batches_tracked", count)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs) -> None:
        # Checkpoints from before num_batches_tracked existed still load with strict=True.
        version = local_metadata.get("version")
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            state_dict[key] = torch.tensor(0, dtype=torch.long)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    def _check_input(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        if x.dim() not in self._ranks:
            raise ValueError(
                f"{name} expects a {self._shape_text} input, got shape {tuple(x.shape)} "
                f"({x.dim()} dims)"
            )
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{name}({self.num_features}) expects {self.num_features} channels in dim 1, "
                f"got input of shape {tuple(x.shape)}"
            )

    def _check_batch(self, x: torch.Tensor) -> None:
        # Exactly the case torch rejects: one value per channel (an empty batch is allowed).
        if _values_per_channel(x) == 1:
            fix = "use a batch size > 1, or drop the last partial batch (DataLoader drop_last=True)"
            if self.running_mean is not None:
                fix += ", or call model.eval() to normalize with the running statistics"
            else:
                fix += "; model.eval() will not help: this layer has track_running_stats=False"
            raise ValueError(
                f"{type(self).__name__} needs more than one value per channel in training mode, "
                f"got input of shape {tuple(x.shape)}: the batch variance of a single value is "
                f"undefined, so there is nothing to normalize by. To fix it, {fix}."
            )
        if self.eps <= 0:
            raise ValueError(f"{type(self).__name__} needs eps > 0 in training, got {self.eps}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        # As torch: batch statistics in training, and in eval too when there are no buffers.
        if not self.training and not (self.running_mean is None and self.running_var is None):
            return self._normalize_with_running_stats(x)
        self._check_batch(x)
        update = self.training and self.track_running_stats and self.running_mean is not None
        if update and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        if x.numel() == 0:  # nothing to measure; torch counts the batch but keeps the averages
            return self._affine(x)
        compute = _compute_dtype(x)
        weight = None if self.weight is None else self.weight.to(compute)
        bias = None if self.bias is None else self.bias.to(compute)
        y, mean, var = BatchNormFunction.apply(x.to(compute), weight, bias, self.eps)
        if update:
            self._update_running_stats(mean, var, _values_per_channel(x))
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        if self.momentum is not None:
            factor = self.momentum
        elif self.num_batches_tracked is not None:
            factor = 1.0 / float(self.num_batches_tracked)  # cumulative average of all batches
        else:
            factor = 0.0
        # Normalization uses the biased variance, but the running estimate stands in for the
        # population variance at inference, so it tracks the unbiased one (paper, Algorithm 2).
        unbiased = var * (n / (n - 1))
        for buf, stat in ((self.running_mean, mean), (self.running_var, unbiased)):
            buf.mul_(1.0 - factor).add_(stat.to(buf.dtype), alpha=factor)

    def _normalize_with_running_stats(self, x: torch.Tensor) -> torch.Tensor:
        # With fixed statistics BN is a per-channel affine map, y = x * scale + shift; its
        # gradient is that of an affine map, which autograd gets exactly, so no custom Function.
        compute = _compute_dtype(x)
        scale = torch.rsqrt(self.running_var.to(compute) + self.eps)
        shift = -self.running_mean.to(compute) * scale
        if self.weight is not None:
            scale, shift = scale * self.weight.to(compute), shift * self.weight.to(compute)
        if self.bias is not None:
            shift = shift + self.bias.to(compute)
        xc = x.to(compute)
        return (xc * _per_channel(scale, xc) + _per_channel(shift, xc)).to(x.dtype)

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        # Empty batches: keep the output attached to weight/bias so their grads are zeros, not None.
        y = x if self.weight is None else x * _per_channel(self.weight, x)
        return y.clone() if self.bias is None else y + _per_channel(self.bias, x)


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs; drop-in for torch.nn.BatchNorm1d."""

    _ranks = (2, 3)
    _shape_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs; drop-in for torch.nn.BatchNorm2d."""

    _ranks = (4,)
    _shape_text = "(N, C, H, W)"
