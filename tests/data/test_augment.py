"""The pure batch augmentations against plain per-sample reference code."""

import pytest
import torch

from reslab.data.augment import Draw, crop_flip, cutout, draw, make_store, normalize, resize

from .conftest import index_set


def reference_crop_flip(padded, index, d, size):
    h, w = size
    out = []
    for i, dy, dx, f in zip(
        index.tolist(), d.dy.tolist(), d.dx.tolist(), d.flipped.tolist(), strict=True
    ):
        crop = padded[i, :, dy : dy + h, dx : dx + w]
        out.append(crop.flip(-1) if f else crop)
    return torch.stack(out)


@pytest.mark.parametrize("padding", [0, 3])
def test_crop_flip_matches_per_sample_slicing(padding):
    data = index_set(n=40, c=3, h=6, w=5)
    store = make_store(data.images, padding, mirror=True)
    assert store.shape == (80, 3, 6 + 2 * padding, 5 + 2 * padding)
    assert store[:, :, :padding].eq(0).all() and store[:, :, :, 5 + padding :].eq(0).all()
    d = draw(torch.Generator().manual_seed(0), 64, padding, True, (6, 5))
    index = torch.randint(0, 40, (64,), generator=torch.Generator().manual_seed(1))
    out = crop_flip(store, 40, index, d, (6, 5))
    assert torch.equal(out, reference_crop_flip(store[:40], index, d, (6, 5)))
    assert out.dtype == torch.uint8 and out.is_contiguous()


def test_without_mirror_or_padding_the_store_is_the_set():
    data = index_set(n=10)
    assert make_store(data.images, 0, mirror=False).data_ptr() == data.images.data_ptr()
    d = draw(torch.Generator().manual_seed(0), 10, 0, False, (8, 8))
    index = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
    assert torch.equal(crop_flip(data.images, 10, index, d, (8, 8)), data.images[index])


def test_draw_covers_every_offset_and_flips_half():
    d = draw(torch.Generator().manual_seed(0), 20_000, 4, True, (32, 24))
    assert set(d.dy.tolist()) == set(range(9)) == set(d.dx.tolist())
    assert 0.48 < d.flipped.float().mean().item() < 0.52
    assert set(d.cy.tolist()) == set(range(32)) and set(d.cx.tolist()) == set(range(24))
    no_flip = draw(torch.Generator().manual_seed(0), 1000, 0, False, (8, 8))
    assert not no_flip.flipped.any() and not no_flip.dy.any() and not no_flip.dx.any()
    assert torch.equal(Draw(*d).slice(5, 9).dy, d.dy[5:9])


@pytest.mark.parametrize(
    ("cy", "cx", "rows", "cols"),
    [
        (4, 4, range(2, 6), range(2, 6)),  # inside: the whole 4 x 4 square
        (0, 0, range(0, 2), range(0, 2)),  # corner: the square hangs over two borders
        (7, 3, range(5, 8), range(1, 5)),  # bottom edge
    ],
)
def test_cutout_zeroes_exactly_its_square(cy, cx, rows, cols):
    images = torch.ones(2, 3, 8, 8)
    out = cutout(images, 4, torch.tensor([cy, 0]), torch.tensor([cx, 0]))
    expected = torch.ones(8, 8)
    expected[rows.start : rows.stop, cols.start : cols.stop] = 0
    assert all(torch.equal(out[0, c], expected) for c in range(3))
    assert images.eq(1).all()  # pure: the input is untouched
    assert torch.equal(cutout(images, 0, torch.tensor([4, 4]), torch.tensor([4, 4])), images)


def test_normalize_matches_the_formula_and_keeps_channels_last():
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    mean, std = torch.tensor([0.49, 0.48, 0.45]), torch.tensor([0.25, 0.24, 0.26])
    scale = (1 / (255 * std)).view(1, 3, 1, 1)
    shift = (-mean / std).view(1, 3, 1, 1)
    expected = (x.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    torch.testing.assert_close(normalize(x, scale, shift, torch.float32), expected)
    half = normalize(x, scale, shift, torch.bfloat16, channels_last=True)
    assert half.dtype == torch.bfloat16
    assert half.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(half.float(), expected, atol=0.02, rtol=0.01)


def test_resize_is_torchvision_resize_on_the_whole_image_and_keeps_the_layout():
    from torchvision.transforms import v2

    x = torch.randn(4, 3, 32, 32)
    expected = v2.Resize((20, 20), antialias=True)(x)  # bilinear, antialiased
    torch.testing.assert_close(resize(x, (20, 20), torch.float32), expected)
    nhwc = resize(x.contiguous(memory_format=torch.channels_last), (16, 16), torch.bfloat16)
    assert nhwc.shape == (4, 3, 16, 16) and nhwc.dtype == torch.bfloat16
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    small = resize(x, (16, 16), torch.float32)
    torch.testing.assert_close(nhwc.float(), small, atol=0.05, rtol=0.02)
