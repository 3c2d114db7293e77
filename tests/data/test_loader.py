"""The device-resident loader: determinism, exact resume, coverage and sharding, augmentations."""

import pytest
import torch

from reslab.data import DeviceLoader, ImageSet

from .conftest import index_set

RAW = dict(mean=(0.0,), std=(1 / 255,))  # normalization that leaves pixel values as they are


def loader(data, **kw):
    channels = data.images.shape[1]
    args = dict(batch_size=8, mean=(0.0,) * channels, std=(1 / 255,) * channels, train=True)
    return DeviceLoader(data, **{**args, **kw})


def batches(ld, epoch=0, start=0):
    return list(ld.iter_epoch(epoch, start_batch=start))


def same(a, b):
    return len(a) == len(b) and all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )


def test_same_seed_same_batches_other_seed_or_epoch_other_batches():
    data = index_set()
    a = batches(loader(data, cutout=3))
    assert same(a, batches(loader(data, cutout=3)))
    assert not same(a, batches(loader(data, cutout=3, seed=1)))
    assert not same(a, batches(loader(data, cutout=3), epoch=1))
    ld = loader(data)
    ld.set_epoch(2)
    assert same(list(ld), batches(ld, epoch=2))


@pytest.mark.parametrize("world", [1, 3])
def test_resuming_mid_epoch_gives_exactly_the_tail_of_the_epoch(world):
    for rank in range(world):
        ld = loader(index_set(), cutout=3, world_size=world, rank=rank, batch_size=4)
        full = batches(ld, epoch=5)
        for k in (1, 3, len(full) - 1, len(full)):
            assert same(batches(ld, epoch=5, start=k), full[k:])


def test_cutout_changes_nothing_but_its_square():
    data = index_set(n=32, c=1, h=8, w=8)
    plain = batches(loader(data, cutout=0))
    cut = batches(loader(data, cutout=4))
    for (x0, y0), (x1, y1) in zip(plain, cut, strict=True):
        assert torch.equal(y0, y1)
        changed = x0 != x1
        assert torch.equal(x1[changed], torch.zeros_like(x1[changed]))  # zeros after normalizing
        assert changed.sum(dim=(1, 2, 3)).max() <= 16


def _labels(ld, epoch=0):
    return torch.cat([y for _, y in batches(ld, epoch)])


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("train", [True, False])
def test_every_sample_exactly_once_per_epoch_across_ranks(world, train):
    n = 53
    data = ImageSet(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n))
    seen = []
    for rank in range(world):
        ld = DeviceLoader(
            data, batch_size=4, train=train, drop_last=False, rank=rank, world_size=world, **RAW
        )
        labels = _labels(ld, epoch=3)
        assert len(labels) == ld.num_samples and len(ld) == len(batches(ld, epoch=3))
        seen.append(labels)
    assert sorted(torch.cat(seen).tolist()) == list(range(n))


@pytest.mark.parametrize("world", [2, 3])
def test_drop_last_ranks_have_equal_batches_and_share_one_trimmed_remainder(world):
    n, bs = 53, 4
    data = ImageSet(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n))
    lds = [DeviceLoader(data, batch_size=bs, train=True, rank=r, world_size=world, **RAW)
           for r in range(world)]  # fmt: skip
    assert {len(ld) for ld in lds} == {n // (bs * world)}
    assert {ld.num_samples for ld in lds} == {n // (bs * world) * bs}
    seen = torch.cat([_labels(ld) for ld in lds])
    assert len(set(seen.tolist())) == len(seen) == n // (bs * world) * bs * world
    single = DeviceLoader(data, batch_size=bs * world, train=True, **RAW)  # one process
    assert set(seen.tolist()) == set(_labels(single).tolist())


def test_ranks_together_give_the_single_process_batches_bit_for_bit():
    data = index_set(n=45)
    single = batches(loader(data, batch_size=12, cutout=2), epoch=4)
    ranks = [batches(loader(data, batch_size=4, cutout=2, rank=r, world_size=3), epoch=4)
             for r in range(3)]  # fmt: skip
    for k, (x, y) in enumerate(single):
        assert torch.equal(torch.cat([r[k][0] for r in ranks]), x)
        assert torch.equal(torch.cat([r[k][1] for r in ranks]), y)


def test_crop_offsets_cover_the_full_range_on_both_axes():
    # Pixel values encode their own (row, col), so each crop's offset can be read back.
    h = w = 8
    pos = (torch.arange(h)[:, None] * 16 + torch.arange(w)[None, :] + 1).to(torch.uint8)
    n = 3000
    data = ImageSet(pos.expand(n, 1, h, w).contiguous(), torch.zeros(n, dtype=torch.int64))
    ld = DeviceLoader(data, batch_size=n, train=True, flip=False, crop_padding=4, **RAW)
    ((x, _),) = batches(ld)
    x = x[:, 0].round().long()
    first = (x > 0).flatten(1).float().argmax(dim=1)  # one original pixel per crop
    i, j = first // w, first % w
    v = x.flatten(1).gather(1, first[:, None])[:, 0] - 1
    offsets = set(zip((v // 16 - i).tolist(), (v % 16 - j).tolist(), strict=True))
    assert offsets == {(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)}
    # ... and the crop is the zero-padded image shifted by its offset, nothing else.
    assert x.max() <= 120 and (x == 0).any()


def test_flip_rate_is_about_half_and_labels_stay_with_their_images():
    n = 4000
    images = (torch.arange(n) % 200 + 1).to(torch.uint8).view(n, 1, 1, 1).repeat(1, 1, 4, 4)
    images[:, :, :, 0] = 255  # a bright left column shows which images were mirrored
    ld = DeviceLoader(
        ImageSet(images, torch.arange(n)), batch_size=500, train=True, crop_padding=0, **RAW
    )
    xs, ys = map(torch.cat, zip(*batches(ld), strict=True))
    flipped = xs[:, 0, 0, 3] == 255
    assert torch.equal(flipped, xs[:, 0, 0, 0] != 255)
    assert 0.47 < flipped.float().mean().item() < 0.53
    assert torch.equal(xs[:, 0, 1, 1].round().long(), ys % 200 + 1)
    assert sorted(ys.tolist()) == list(range(n))


def test_eval_is_ordered_unaugmented_normalized_and_channels_last():
    data = index_set(n=50)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    ld = DeviceLoader(data, batch_size=16, mean=mean, std=std, train=False, channels_last=True)
    assert len(ld) == 4 and ld.num_samples == 50 and not ld.drop_last
    out = batches(ld, epoch=7)
    x = torch.cat([b[0] for b in out])
    expected = (data.images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(x, expected)
    assert torch.equal(torch.cat([b[1] for b in out]), data.labels)
    assert all(b[0].is_contiguous(memory_format=torch.channels_last) for b in out)
    assert out[0][1].dtype == torch.int64


def test_training_defaults_drop_the_partial_batch_and_dtype_is_honoured():
    ld = loader(index_set(n=50), dtype=torch.bfloat16)
    assert ld.drop_last and len(ld) == 6 and ld.num_samples == 48
    x, y = next(iter(ld))
    assert x.dtype == torch.bfloat16 and x.shape == (8, 3, 8, 8) and y.dtype == torch.int64
    assert len(loader(index_set(n=50), drop_last=False)) == 7
    x, _ = next(iter(loader(index_set(n=50), channels_last=True, cutout=3)))
    assert x.is_contiguous(memory_format=torch.channels_last) and (x == 0).any()


def test_grayscale_sets_give_one_channel():
    data = index_set(n=20, c=1)
    x, _ = next(iter(loader(data)))
    assert x.shape == (8, 1, 8, 8)


def test_bad_arguments_are_value_errors():
    data = index_set()
    for bad in (dict(batch_size=0), dict(rank=2, world_size=2), dict(mean=(0.5,)),
                dict(std=(0.0, 1.0, 1.0)), dict(cutout=-1)):  # fmt: skip
        with pytest.raises(ValueError):
            loader(data, **bad)
    with pytest.raises(ValueError, match="start_batch"):
        batches(loader(data), start=-1)


@pytest.mark.gpu
def test_on_cuda_batches_stay_on_the_device_and_resume_exactly():
    ld = loader(index_set(n=300), device="cuda", cutout=3, channels_last=True)
    full = batches(ld, epoch=1)
    assert full[0][0].is_cuda and full[0][1].is_cuda and full[0][1].dtype == torch.int64
    assert same(batches(ld, epoch=1, start=5), full[5:])
    assert len(set(torch.cat([y for _, y in full]).tolist())) == len(ld) * 8 == 296


def test_a_size_scales_the_same_batches_and_none_restores_them():
    data = index_set(n=32, c=3, h=8, w=8)
    ld = loader(data, cutout=3)
    full = batches(ld)
    ld.size = 4
    small = batches(ld)
    assert [x.shape[-2:] for x, _ in small] == [(4, 4)] * len(full)
    for (x, y), (xs, ys) in zip(full, small, strict=True):
        assert torch.equal(y, ys)  # the same images, crops, flips and cutouts, then scaled
        torch.testing.assert_close(xs, torch.nn.functional.interpolate(
            x, size=(4, 4), mode="bilinear", antialias=True))  # fmt: skip
    ld.size = 8  # the images' own size: untouched
    assert same(batches(ld), full)
    ld.size = None
    assert same(batches(ld), full)


def test_a_size_is_the_shorter_side_and_keeps_the_aspect_ratio():
    from reslab.data.loader import scaled_size

    assert scaled_size((32, 32), 16) == (16, 16)
    assert scaled_size((24, 48), 12) == (12, 24) and scaled_size((48, 24), 12) == (24, 12)
    ld = loader(index_set(n=16, c=1, h=6, w=9))
    ld.size = 4
    assert {tuple(x.shape[-2:]) for x, _ in batches(ld)} == {(4, 6)}
