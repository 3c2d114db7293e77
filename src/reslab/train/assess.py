"""Evaluate a saved model on a data set split, as `reslab eval` and `reslab.evaluate` do."""

from __future__ import annotations

from pathlib import Path

from reslab.data import DeviceLoader, default_val_split, load_dataset, split_validation
from reslab.errors import UserError
from reslab.train.evaluate import EvalResult, evaluate
from reslab.train.load import LoadedModel, load
from reslab.train.runtime import resolve_device
from reslab.train.setup import EVAL_BATCH


def evaluate_saved(
    model: str | Path | LoadedModel,
    dataset: str | None = None,
    split: str = "test",
    tta: bool = False,
    data_dir: str | None = None,
    device: str = "auto",
) -> tuple[EvalResult, list[str]]:
    """Top-1, top-5, loss and confusion matrix of a run/checkpoint on `split` of a data set.

    `split="val"` re-creates the run's own validation hold-out (same seed and size).
    """
    loaded = model if isinstance(model, LoadedModel) else load(model)
    config = loaded.config
    data = load_dataset(dataset or config.dataset, data_dir or config.data_dir or None)
    if list(data.classes) != list(loaded.data["classes"]):
        raise UserError(
            f"data set {data.name} has classes {data.classes[:4]}..., but the model "
            f"was trained on {loaded.data['classes'][:4]}...; evaluate on a data set "
            "with the same classes"
        )
    if split == "val":
        n_val = (
            default_val_split(data.name, len(data.train))
            if config.val_split < 0
            else config.val_split
        )
        images = split_validation(data.train, n_val, seed=config.seed)[1]
        if not len(images):
            raise UserError("this run had no validation split (val_split = 0)")
    else:
        images = data.test
    dev = resolve_device(device)
    # Normalize with the statistics the model was trained with, not the new data set's.
    loader = DeviceLoader(
        images,
        batch_size=EVAL_BATCH,
        mean=loaded.data["mean"],
        std=loaded.data["std"],
        train=False,
        device=dev,
    )
    net = loaded.model.to(dev)
    return evaluate(net, loader, len(data.classes), tta=tta), list(data.classes)
