"""Batch augmentations as pure functions: one call transforms a whole batch on its device.

After airbench's `batch_crop` / `batch_flip_lr`: no per-sample Python, no worker processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_crop(images: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Random crops of the input size from the zero-padded batch, one offset pair per sample."""
    if padding == 0:
        return images
    b, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    chans = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def batch_flip(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(len(images), generator=gen, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def batch_cutout(images: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Zero a size x size square at a random centre per image (DeVries & Taylor 2017,
    arXiv:1708.04552); the square may hang over the border, as in the paper."""
    b, _, h, w = images.shape
    cy = torch.randint(0, h, (b, 1, 1), generator=gen, device=images.device)
    cx = torch.randint(0, w, (b, 1, 1), generator=gen, device=images.device)
    ys = torch.arange(h, device=images.device)[None, :, None]
    xs = torch.arange(w, device=images.device)[None, None, :]
    half = size // 2
    inside = (
        (ys >= cy - half) & (ys < cy - half + size) & (xs >= cx - half) & (xs < cx - half + size)
    )
    return images.masked_fill(inside[:, None], 0)


def normalize(
    images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """uint8 -> float, (x / 255 - mean) / std; mean and std arrive pre-scaled by 255."""
    return ((images.to(torch.float32) - mean) / std).to(dtype)
