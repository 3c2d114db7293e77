"""Evaluation over batches, the loop that training and `reslab eval` share: loss, top-1,
top-5 and the confusion matrix, read once at the end."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

EVAL_BATCH = 500  # images per evaluation batch: no gradients, so larger than training batches


@dataclass
class EvalResult:
    loss: float
    top1: float  # fraction correct, 0..1
    top5: float
    count: int
    confusion: torch.Tensor  # (num_classes, num_classes) int64, rows = true class, cols = predicted


def tta_views(tta: bool, shift: int = 0) -> int:
    """Forward passes per image of `predict_logits`: 1, 2 with flips, 6 with shifts too."""
    return (6 if shift else 2) if tta else 1


def shifted(x: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch translated `shift` pixels down-right and up-left, in x's memory layout. The
    strip that comes in is reflected from the image, as airbench's translate TTA does: training
    crops pad with black, but the batch here is normalized, where black depends on statistics
    this function is not given and zero is the mean colour, an edge no crop had. torch.roll
    would wrap the opposite edge in."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (shift,) * 4, mode="reflect")
    # The slices are strided views; a copy keeps a channels-last batch channels-last.
    down_right = padded[..., :h, :w].clone(memory_format=torch.preserve_format)
    up_left = padded[..., 2 * shift :, 2 * shift :].clone(memory_format=torch.preserve_format)
    return down_right, up_left


def _flip_mean(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # Flip test-time augmentation: the mirror image is as likely as the image.
    return (model(x) + model(torch.flip(x, dims=(3,)))) / 2


def predict_logits(model: nn.Module, x: torch.Tensor, tta: bool, shift: int = 0) -> torch.Tensor:
    """The model's logits for a batch; with `tta`, averaged over the image and its mirror, and
    with `shift` over both also translated up-left and down-right by `shift` pixels. The views
    weigh as airbench's tta_level 2 draws them (github.com/KellerJordan/airbench, airbench94.py,
    where shift is 1): unshifted half the time, each translation a quarter, each mirrored half
    the time; so 1/4 each for the image and its mirror, 1/8 for each of the 4 shifted views."""
    if not tta:
        if shift:
            raise ValueError("a TTA shift needs tta=True")
        return model(x)
    logits = _flip_mean(model, x)
    if shift:
        down_right, up_left = shifted(x, shift)
        logits = logits / 2 + (_flip_mean(model, down_right) + _flip_mean(model, up_left)) / 4
    return logits


@torch.no_grad()
def evaluate_batches(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    autocast: Callable = contextlib.nullcontext,
    tta: bool = False,
    reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
    tta_shift: int = 0,  # pixels; with tta, also the translated views (`predict_logits`)
) -> EvalResult:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top-1, top-5, count
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    k = min(5, num_classes)
    for x, y in batches:
        with autocast():
            logits = predict_logits(model, x, tta, tta_shift)
        logits = logits.float()
        topk = logits.topk(k, dim=1).indices
        sums += torch.stack(
            [
                F.cross_entropy(logits, y, reduction="sum").double(),
                (topk[:, 0] == y).sum().double(),
                (topk == y[:, None]).any(dim=1).sum().double(),
                torch.tensor(float(len(y)), dtype=torch.float64, device=device),
            ]
        )
        confusion += torch.bincount(y * num_classes + topk[:, 0], minlength=num_classes**2)
    model.train(was_training)
    # Across processes each rank saw its shard; the sums make the whole split.
    sums, confusion = reduce(sums), reduce(confusion)
    loss, top1, top5, count = sums.tolist()  # host-device sync: the only one of the evaluation
    matrix = confusion.view(num_classes, num_classes).cpu()
    if count == 0:
        return EvalResult(float("nan"), float("nan"), float("nan"), 0, matrix)
    return EvalResult(loss / count, top1 / count, top5 / count, int(count), matrix)
