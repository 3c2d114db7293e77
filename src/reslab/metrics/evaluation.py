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


def predict_logits(model: nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    logits = model(x)
    if tta:  # flip test-time augmentation: the mirror image is as likely as the image
        logits = (logits + model(torch.flip(x, dims=(3,)))) / 2
    return logits


@torch.no_grad()
def evaluate_batches(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    autocast: Callable = contextlib.nullcontext,
    tta: bool = False,
    reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
) -> EvalResult:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top-1, top-5, count
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    k = min(5, num_classes)
    for x, y in batches:
        with autocast():
            logits = predict_logits(model, x, tta)
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
