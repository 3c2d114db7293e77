"""The device-resident loader: the whole split lives on the training device as uint8, and every
batch is gathered, augmented and normalized there with batched tensor ops."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from reslab.data.augment import batch_crop, batch_cutout, batch_flip, normalize
from reslab.data.sets import ImageSet

_MASK = (1 << 63) - 1


def _mix(*values: int) -> int:
    """A 63-bit seed from several integers (splitmix64 steps), so that (seed, epoch, batch)
    triples that differ a little give unrelated random streams."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return h & _MASK


class DeviceLoader:
    """Batches of (normalized float images, int64 labels) on `device`.

    Every random choice of a batch is a function of (seed, epoch, batch index, rank) alone, so
    `iter_epoch(e, start_batch=k)` yields exactly batches k.. of epoch e: resume is exact.
    """

    def __init__(
        self,
        data: ImageSet,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        train: bool,
        device: str | torch.device = "cpu",
        seed: int = 0,
        drop_last: bool | None = None,
        crop_padding: int = 4,
        flip: bool = True,
        cutout: int = 0,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.device = torch.device(device)
        self.images = data.images.to(self.device)  # uint8 stays uint8: 4x less memory
        self.labels = data.labels.to(self.device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.drop_last = train if drop_last is None else drop_last
        self.crop_padding = crop_padding if train else 0
        self.flip, self.cutout = flip and train, cutout if train else 0
        self.channels_last, self.dtype = channels_last, dtype
        self.rank, self.world_size = rank, world_size
        self._mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self._std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        n = len(self.labels)
        if self.drop_last:
            return (n // (self.batch_size * self.world_size)) * self.batch_size
        return len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_epoch(self.epoch)

    def _generator(self, *key: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(_mix(self.seed, *key))

    def _order(self, epoch: int) -> torch.Tensor:
        """This rank's sample indices for the epoch; the same permutation on every rank."""
        n = len(self.labels)
        if self.train:
            order = torch.randperm(n, generator=self._generator(epoch), device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        if self.drop_last:
            order = order[
                : (n // (self.batch_size * self.world_size)) * self.batch_size * self.world_size
            ]
        return order[self.rank :: self.world_size]

    def iter_epoch(
        self, epoch: int, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._order(epoch)
        for b in range(start_batch, len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self._batch(index, epoch, b)

    def _batch(self, index: torch.Tensor, epoch: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[index]
        if self.train and (self.crop_padding or self.flip or self.cutout):
            gen = self._generator(epoch, b, self.rank, 1)
            x = batch_crop(x, self.crop_padding, gen)
            if self.flip:
                x = batch_flip(x, gen)
        x = normalize(x, self._mean, self._std, self.dtype)
        if self.cutout:
            x = batch_cutout(x, self.cutout, gen)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[index]
