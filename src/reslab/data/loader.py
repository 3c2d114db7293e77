"""The device-resident loader: the whole uint8 split lives on the training device, and every
batch is gathered, augmented and normalized there with batched tensor ops.

Randomness is a pure function of (seed, epoch, batch index): the permutation comes from a
generator seeded with (seed, epoch), the augmentation of global batch k from one seeded with
(seed, epoch, k). So `iter_epoch(e, start_batch=k)` yields exactly batches k.. of epoch e, and
with world_size ranks of batch b each, the ranks' batches k together are exactly batch k of one
process with batch world_size * b. Streams differ between CPU and CUDA generators: resume on the
device type a run started on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from reslab.data.augment import crop_flip, cutout, draw, make_store, normalize, resize
from reslab.data.sets import ImageSet

_PERMUTATION, _AUGMENTATION = 1, 2  # stream tags, so the two never share a seed
_U64 = (1 << 64) - 1


def _mix(*values: int) -> int:
    """A 63-bit seed from several integers (splitmix64 finalizer steps, Steele et al. 2014), so
    nearby (seed, epoch, batch) tuples give unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = ((h ^ (v & _U64)) * 0xBF58476D1CE4E5B9) & _U64
        h = ((h ^ (h >> 31)) * 0x94D049BB133111EB) & _U64
        h ^= h >> 29
    return h >> 1


def _check_args(data, batch_size, mean, std, crop_padding, cutout_size, rank, world_size):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world_size {world_size}")
    if crop_padding < 0 or cutout_size < 0:
        raise ValueError(f"crop_padding and cutout must be >= 0, got {crop_padding}, {cutout_size}")
    channels = data.images.shape[1]
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ValueError(f"mean and std need {channels} values (std > 0), got {mean}, {std}")


class DeviceLoader:
    """Batches of (normalized images in `dtype`, int64 labels) on `device`."""

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
        _check_args(data, batch_size, mean, std, crop_padding, cutout, rank, world_size)
        self.device = torch.device(device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.rank, self.world_size = rank, world_size
        self.drop_last = train if drop_last is None else drop_last
        self.crop_padding = crop_padding if train else 0
        self.flip, self.cutout = flip and train, cutout if train else 0
        self.channels_last, self.dtype = channels_last, dtype
        self.image_size = tuple(data.images.shape[2:])
        # Host-device syncs, here only: the copies of the split (uint8: 4x less than float)
        # and of mean/std to the device. Batches need none.
        images = data.images.to(self.device)
        self._store = make_store(images, self.crop_padding, mirror=self.flip)
        self._n = len(images)
        self.labels = data.labels.to(self.device)
        scale = 1 / (255 * torch.tensor(std, dtype=torch.float64))
        shift = -torch.tensor(mean, dtype=torch.float64) / torch.tensor(std, dtype=torch.float64)
        self._scale = scale.float().view(1, -1, 1, 1).to(self.device)
        self._shift = shift.float().view(1, -1, 1, 1).to(self.device)
        self.epoch = 0
        # Progressive resizing: batches drawn while this is set are scaled down so that their
        # shorter side is `size` px (the training loop sets it before each step); None keeps
        # the images' own size.
        self.size: int | None = None

    # Sharding: global batch k is order[k*G : (k+1)*G] with G = world_size * batch_size; rank r
    # takes its r-th contiguous share. Only a partial last global batch (drop_last=False) can
    # leave a rank without a batch, and then only when it holds fewer samples than ranks.

    def _global_count(self) -> int:
        n, g = len(self.labels), self.batch_size * self.world_size
        return n // g if self.drop_last else -(-n // g)

    def _span(self, k: int) -> tuple[int, int]:
        """This rank's [start, stop) inside global batch k, relative to the batch's start."""
        g = self.batch_size * self.world_size
        size = min(g, len(self.labels) - k * g)
        share = -(-size // self.world_size)
        start = min(self.rank * share, size)
        return start, min(start + share, size)

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        count = self._global_count()
        if count and self._span(count - 1)[0] == self._span(count - 1)[1]:
            return count - 1  # a rank with no share of a partial last batch
        return count

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch."""
        return sum(b - a for a, b in map(self._span, range(len(self))))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iter_epoch(self.epoch)

    def _generator(self, *key: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(_mix(self.seed, *key))

    def _order(self, epoch: int) -> torch.Tensor:
        """The epoch's sample order, the same on every rank."""
        n = len(self.labels)
        if not self.train:
            return torch.arange(n, device=self.device)
        gen = self._generator(_PERMUTATION, epoch)
        return torch.randperm(n, generator=gen, device=self.device)

    def iter_epoch(
        self, epoch: int, start_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's batches start_batch.. of `epoch`. No host-device sync in the loop: on
        CUDA the batches are queued as fast as the consumer takes them."""
        if start_batch < 0:
            raise ValueError(f"start_batch must be >= 0, got {start_batch}")
        order = self._order(epoch)
        g = self.batch_size * self.world_size
        for k in range(start_batch, len(self)):
            start, stop = self._span(k)
            index = order[k * g + start : k * g + stop]
            params = draw(
                self._generator(_AUGMENTATION, epoch, k),
                min(g, len(order) - k * g),
                self.crop_padding,
                self.flip,
                self.image_size,
            )
            yield self._batch(index, params.slice(start, stop))

    def _batch(self, index: torch.Tensor, params) -> tuple[torch.Tensor, torch.Tensor]:
        x = crop_flip(self._store, self._n, index, params, self.image_size)
        scaled = self.size is not None and self.size != min(self.image_size)
        dtype = torch.float32 if scaled else self.dtype  # scaled in float32, then cast
        x = normalize(x, self._scale, self._shift, dtype, self.channels_last)
        x = cutout(x, self.cutout, params.cy, params.cx)
        if scaled:
            x = resize(x, scaled_size(self.image_size, self.size), self.dtype)
        return x, self.labels[index]


def scaled_size(image_size: tuple[int, int], shorter: int) -> tuple[int, int]:
    """(h, w) scaled so that the shorter side is `shorter` px, the aspect ratio kept."""
    h, w = image_size
    return (shorter, round(w * shorter / h)) if h <= w else (round(h * shorter / w), shorter)
