"""Evaluate a saved model on a data set split, as `reslab eval` and `reslab.evaluate` do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from reslab.data import DeviceLoader, holdout, load_dataset
from reslab.errors import UserError
from reslab.infer.load import LoadedModel, load
from reslab.metrics import EVAL_BATCH, evaluate_batches, most_confused, per_class_accuracy
from reslab.run.config import check_tta
from reslab.run.device import resolve_device

SPLITS = ("test", "val")


@dataclass
class Evaluation:
    """A saved model's scores on one split of one data set."""

    dataset: str
    split: str  # "test", or "val": the run's own validation hold-out
    tta: bool  # flip test-time augmentation was used
    loss: float  # mean cross-entropy
    top1: float  # fraction correct, 0..1
    top5: float
    count: int  # images evaluated
    classes: list[str]
    confusion: torch.Tensor  # (classes, classes) int64; rows = true class, cols = predicted
    # The images are the ones the model's record names (its test split, or for "val" its
    # training split), by data checksum; None where the model has no record to compare.
    same_data: bool | None = None
    # The training augmentation (random crops and flips) was left on, as some tutorials do.
    augmented: bool = False
    tta_shift: int = 0  # px; with tta, the views were also translated (`predict_logits`)

    def per_class_accuracy(self) -> dict[str, float | None]:
        return per_class_accuracy(self.confusion, self.classes)

    def most_confused(self, k: int = 5) -> list[dict]:
        return most_confused(self.confusion, self.classes, k)

    def to_json(self) -> dict:
        """The content of eval.json."""
        return {
            "dataset": self.dataset,
            "loss": self.loss,
            "top1": self.top1,
            "top5": self.top5,
            "count": self.count,
            "split": self.split,
            "tta": self.tta,
            "tta_shift": self.tta_shift,
            "augmented": self.augmented,
            "same_data": self.same_data,
            "classes": self.classes,
            "per_class_acc": self.per_class_accuracy(),
            "most_confused": self.most_confused(),
            "confusion": self.confusion.tolist(),
        }


def _images(loaded: LoadedModel, data, split: str):
    if split == "test":
        return data.test
    # The run's own hold-out: the same rule, size and seed as in training.
    images = holdout(data, loaded.config.val_split, loaded.config.seed)[1]
    if not len(images):
        raise UserError("this run had no validation split (val_split = 0)")
    return images


def evaluate(
    model: str | Path | LoadedModel,
    dataset: str | None = None,
    split: str = "test",
    tta: bool = False,
    data_dir: str | None = None,
    device: str = "auto",
    augmented: bool = False,
    tta_shift: int = 0,
) -> Evaluation:
    """Top-1, top-5, loss and confusion matrix of a saved model on `split` of a data set (by
    default the one it was trained on). `split="val"` re-creates the run's own hold-out.
    `tta_shift` (pixels, with `tta`) adds translated views to the flips, as the config key of
    that name does. `augmented=True` leaves the model's training augmentation on (its random
    crops and flips, drawn from a fixed seed), as some tutorials evaluate: for comparison, not
    as a score."""
    check_tta(tta, tta_shift)
    loaded = model if isinstance(model, LoadedModel) else load(model)
    config = loaded.config
    if dataset is None and config.dataset.startswith("folder:"):
        _check_folder_here(loaded)
    if split not in SPLITS:
        raise UserError(f"split: unknown value {split!r}; allowed: {', '.join(SPLITS)}")
    # The model's classes are checked before any image is decoded; the test split alone needs
    # no training images.
    data = load_dataset(
        dataset or config.dataset,
        data_dir or config.data_dir or None,
        classes=loaded.classes,
        need_train=split == "val",
    )
    if list(data.classes) != loaded.classes:  # where only the decoded files name the classes
        raise UserError(
            f"data set {data.name} has classes {data.classes[:4]}..., but the model "
            f"was trained on {loaded.classes[:4]}...; evaluate on a data set "
            "with the same classes"
        )
    images = _images(loaded, data, split)
    dev = resolve_device(device)
    # Normalize with the statistics the model was trained with, not the new data set's.
    loader = DeviceLoader(
        images,
        batch_size=EVAL_BATCH,
        mean=loaded.data["mean"],
        std=loaded.data["std"],
        train=augmented,
        drop_last=False,
        crop_padding=config.crop_padding,
        flip=config.flip,
        device=dev,
    )
    with loaded.on(dev) as net:
        r = evaluate_batches(net, loader, len(data.classes), tta=tta, tta_shift=tta_shift)
    which = "test" if split == "test" else "train"  # the split the images come from
    known = loaded.data.get("digests", {}).get(which)
    same = None if known is None else data.digests.get(which) == known
    return Evaluation(
        data.name, split, tta, r.loss, r.top1, r.top5, r.count, list(data.classes), r.confusion,
        same, augmented, tta_shift,
    )  # fmt: skip


def _check_folder_here(loaded: LoadedModel) -> None:
    """A model trained on an image folder, evaluated without --dataset: the folder must be
    here. Shipped weights name the folder, not the trainer's path, and their data checksum."""
    folder = loaded.config.dataset.removeprefix("folder:")
    if Path(folder).expanduser().is_dir():
        return
    digest = loaded.data.get("digests", {}).get("test")
    checksum = f" (test data checksum {digest[:12]})" if digest else ""
    raise UserError(
        f"{loaded.source.name} was trained on the image folder {folder!r}{checksum}, which is "
        "not here; name the data set to evaluate on (--dataset folder:DIR, a copy of it, which "
        "is then checked against the checksum; or dataset=)"
    )
