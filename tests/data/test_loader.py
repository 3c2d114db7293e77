"""The device-resident loader: determinism, exact resume, coverage, and each augmentation."""

import pytest
import torch

from reslab.data import DeviceLoader, ImageSet


def make_set(n=50, c=3, h=8, w=8):
    images = torch.arange(n * c * h * w, dtype=torch.int64).remainder(251).to(torch.uint8)
    return ImageSet(images.view(n, c, h, w).contiguous(), torch.arange(n) % 5)


def loader(data, **kw):
    args = dict(batch_size=8, mean=(0.0,) * 3, std=(1 / 255,) * 3, train=True, seed=0)
    return DeviceLoader(data, **{**args, **kw})


def epoch(ld, e=0, start=0):
    return [(x.clone(), y.clone()) for x, y in ld.iter_epoch(e, start_batch=start)]


def test_same_seed_same_batches_other_seed_other_batches():
    data = make_set()
    a, b, c = epoch(loader(data)), epoch(loader(data)), epoch(loader(data, seed=1))
    assert all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )
    assert not all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, c, strict=True))
    assert not torch.equal(a[0][0], epoch(loader(data), e=1)[0][0])


def test_resuming_mid_epoch_gives_the_tail_of_the_epoch():
    ld = loader(make_set(), cutout=3)
    full, tail = epoch(ld), epoch(ld, start=3)
    assert len(tail) == len(full) - 3
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        for a, b in zip(full[3:], tail, strict=True)
    )


def _ids(batches):
    # Without augmentation each image is identified by its first pixel value pattern.
    return torch.cat([y for _, y in batches])


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("train", [True, False])
def test_every_sample_once_per_epoch_across_ranks(world, train):
    n = 53
    data = ImageSet(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n))
    seen = []
    for rank in range(world):
        ld = DeviceLoader(
            data,
            batch_size=4,
            mean=(0.0,),
            std=(1.0,),
            train=train,
            drop_last=False,
            rank=rank,
            world_size=world,
            crop_padding=0,
        )
        seen.append(_ids(epoch(ld)))
        assert len(ld) == -(-ld.num_samples // 4)
    assert sorted(torch.cat(seen).tolist()) == list(range(n))


def test_drop_last_gives_equal_batches_on_every_rank():
    data = ImageSet(torch.zeros(53, 1, 2, 2, dtype=torch.uint8), torch.arange(53))
    lds = [
        DeviceLoader(data, batch_size=4, mean=(0.0,), std=(1.0,), train=True, rank=r, world_size=2)
        for r in range(2)
    ]
    batches = [epoch(ld) for ld in lds]
    assert len(batches[0]) == len(batches[1]) == 6
    ids = torch.cat([_ids(b) for b in batches])
    assert len(set(ids.tolist())) == 48  # no sample twice


def test_crop_offsets_cover_the_full_range():
    # One image whose pixel values encode their own (row, col): the crop offset can be read back.
    h = w = 8
    pos = (torch.arange(h)[:, None] * 16 + torch.arange(w)[None, :] + 1).to(torch.uint8)
    data = ImageSet(pos.expand(2000, 1, h, w).contiguous(), torch.zeros(2000, dtype=torch.int64))
    ld = DeviceLoader(
        data, batch_size=2000, mean=(0.0,), std=(1 / 255,), train=True, flip=False, crop_padding=4
    )
    x, _ = next(iter(ld))
    offsets = set()
    for img in x[:, 0]:
        nz = (img > 0).nonzero()
        r, c = nz[0].tolist()
        v = int(round(img[r, c].item())) - 1
        offsets.add((v // 16 - r, v % 16 - c))
    assert offsets == {(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)}


def test_flip_rate_is_about_half_and_labels_stay_aligned():
    n = 2000
    img = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    img[..., 0] = 255  # a bright left column
    labels = torch.arange(n)
    ld = DeviceLoader(
        ImageSet(img.expand(n, 1, 4, 4).contiguous(), labels),
        batch_size=500,
        mean=(0.0,),
        std=(1 / 255,),
        train=True,
        crop_padding=0,
        drop_last=False,
    )
    xs, ys = zip(*epoch(ld), strict=True)
    flipped = torch.cat(xs)[:, 0, 0, 3] > 0
    assert 0.45 < flipped.float().mean().item() < 0.55
    assert sorted(torch.cat(ys).tolist()) == labels.tolist()


def test_cutout_zeroes_a_square_of_the_normalized_image():
    data = ImageSet(torch.full((64, 1, 16, 16), 200, dtype=torch.uint8), torch.zeros(64).long())
    ld = DeviceLoader(
        data,
        batch_size=64,
        mean=(0.5,),
        std=(0.25,),
        train=True,
        crop_padding=0,
        flip=False,
        cutout=4,
    )
    x, _ = next(iter(ld))
    zeros = (x == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 16 and zeros.min() >= 4  # whole square, or clipped at a border
    assert torch.allclose(x[x != 0], torch.tensor((200 / 255 - 0.5) / 0.25))


def test_eval_order_normalization_and_channels_last():
    data = make_set()
    ld = DeviceLoader(
        data,
        batch_size=16,
        mean=(0.1, 0.2, 0.3),
        std=(0.5, 0.5, 0.5),
        train=False,
        channels_last=True,
    )
    x, y = next(iter(ld))
    expected = (
        data.images[:16].float() / 255 - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)
    ) / 0.5
    torch.testing.assert_close(x, expected)
    assert torch.equal(y, data.labels[:16])
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert len(ld) == 4 and ld.num_samples == 50  # no drop_last in evaluation


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        loader(make_set(), batch_size=0)
    with pytest.raises(ValueError, match="rank"):
        loader(make_set(), rank=2, world_size=2)
