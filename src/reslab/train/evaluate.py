"""Evaluation over a loader: loss, top-1, top-5 and the confusion matrix, read once at the end."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EvalResult:
    loss: float
    top1: float  # fraction correct, 0..1
    top5: float
    count: int
    confusion: torch.Tensor  # (num_classes, num_classes) int64, rows = true class, cols = predicted

    def as_dict(self) -> dict[str, float]:
        return {"loss": self.loss, "top1": self.top1, "top5": self.top5, "count": self.count}


def predict_logits(model: nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    logits = model(x)
    if tta:  # flip test-time augmentation: the mirror image is as likely as the image
        logits = (logits + model(torch.flip(x, dims=(3,)))) / 2
    return logits


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    autocast: Callable = contextlib.nullcontext,
    tta: bool = False,
) -> EvalResult:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    top5 = torch.zeros((), dtype=torch.int64, device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    count = 0
    k = min(5, num_classes)
    for x, y in batches:
        with autocast():
            logits = predict_logits(model, x, tta)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        topk = logits.topk(k, dim=1).indices
        top1 += (topk[:, 0] == y).sum()
        top5 += (topk == y[:, None]).any(dim=1).sum()
        confusion += torch.bincount(y * num_classes + topk[:, 0], minlength=num_classes**2)
        count += len(y)
    model.train(was_training)
    if count == 0:
        return EvalResult(
            float("nan"),
            float("nan"),
            float("nan"),
            0,
            confusion.view(num_classes, num_classes).cpu(),
        )
    # Host-device sync: the only one of the evaluation.
    return EvalResult(
        loss=loss_sum.item() / count,
        top1=top1.item() / count,
        top5=top5.item() / count,
        count=count,
        confusion=confusion.view(num_classes, num_classes).cpu(),
    )
