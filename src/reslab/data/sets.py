"""Decoded data in memory: uint8 image tensors with labels, the splits, and their statistics."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reslab.errors import DataError


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8, (N, C, H, W), contiguous
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[index].contiguous(), self.labels[index].contiguous())


@dataclass
class DataSplits:
    name: str  # "cifar10", "cifar10-sample", "folder:/abs/path", ...
    train: ImageSet
    test: ImageSet
    classes: list[str]
    mean: tuple[float, ...]  # per channel, on the [0, 1] scale, from the train split
    std: tuple[float, ...]
    skipped: int = 0  # unreadable files skipped (folder: sources with skip_corrupt)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train.images.shape[2:])


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple, tuple]:
    """Per-channel mean and std on the [0, 1] scale, in float64 chunks to bound memory."""
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to(torch.float64) / 255
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    n = images.numel() // c
    mean = total / n
    std = (squares / n - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def split_validation(train: ImageSet, n: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """A seeded, class-stratified hold-out of `n` images; the test split is never touched."""
    if n == 0:
        empty = ImageSet(train.images[:0], train.labels[:0])
        return train, empty
    if n < 0 or n >= len(train):
        raise DataError(
            f"val_split {n} must be between 0 and {len(train) - 1} (the training split "
            f"has {len(train)} images)"
        )
    gen = torch.Generator().manual_seed(seed)
    classes, counts = train.labels.unique(return_counts=True)
    # Largest-remainder rounding gives each class its share and exactly n in total.
    share = counts.double() * n / len(train)
    take = share.floor().long()
    remainder = n - int(take.sum())
    take[(share - take).argsort(descending=True)[:remainder]] += 1
    held = []
    for cls, k in zip(classes.tolist(), take.tolist(), strict=True):
        members = (train.labels == cls).nonzero().flatten()
        held.append(members[torch.randperm(len(members), generator=gen)[:k]])
    val_index = torch.cat(held).sort().values
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[val_index] = False
    return train.subset(keep.nonzero().flatten()), train.subset(val_index)
