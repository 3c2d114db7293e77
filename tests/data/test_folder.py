"""folder:PATH data sets from real CIFAR-10 JPEGs and crafted PNGs, and every bad tree."""

import shutil
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch

from reslab.data import load_dataset, read_image
from reslab.data.decode import MAX_PIXELS, parse_header
from reslab.errors import DataError

from .conftest import png_bytes, write_tree


def load(path, tmp_path, **kw):
    return load_dataset(f"folder:{path}", tmp_path / "dd", **kw)


def test_a_tree_of_real_jpegs_decodes_like_single_files(tree, tmp_path):
    d = load(tree, tmp_path)
    assert d.name == f"folder:{tree.resolve()}" and d.classes == ["cat", "dog", "ship"]
    assert d.train.images.shape == (18, 3, 32, 32) and d.train.images.dtype == torch.uint8
    assert d.train.images.is_contiguous() and len(d.test) == 9
    assert d.train.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert torch.equal(d.train.images[7], read_image(tree / "train" / "dog" / "0001.jpg"))
    assert torch.equal(d.test.images[0], read_image(tree / "test" / "cat" / "0000.jpg"))
    assert d.num_classes == 3 and d.in_channels == 3 and d.image_size == (32, 32)
    assert all(0.05 < m < 0.95 for m in d.mean) and all(0.05 < s < 0.5 for s in d.std)


def test_val_instead_of_test_and_one_wrapping_folder(tmp_path):
    write_tree(tmp_path / "outer" / "cifar10", test_name="val")
    (tmp_path / "outer" / "__MACOSX").mkdir()  # zip litter beside it is looked past
    (tmp_path / "outer" / "README.txt").write_text("hello")
    d = load(tmp_path / "outer", tmp_path)
    assert len(d.test) == 9 and d.name == f"folder:{(tmp_path / 'outer' / 'cifar10').resolve()}"


def _png_tree(root, arrays):
    """arrays: (split, class) -> list of numpy images."""
    for (split, name), images in arrays.items():
        (root / split / name).mkdir(parents=True)
        for i, a in enumerate(images):
            (root / split / name / f"{i}.png").write_bytes(png_bytes(a))
    return root


def test_grayscale_pngs_give_a_one_channel_set(tmp_path):
    gray = lambda v: np.full((12, 10), v, dtype=np.uint8)  # noqa: E731
    root = _png_tree(tmp_path / "g", {(s, c): [gray(10), gray(200)] for s in ("train", "test")
                                      for c in ("a", "b")})  # fmt: skip
    d = load(root, tmp_path)
    assert d.train.images.shape == (4, 1, 12, 10) and d.in_channels == 1
    assert d.train.images[:, 0, 0, 0].tolist() == [10, 200, 10, 200]


def test_mixed_gray_and_color_become_rgb_and_16_bit_pngs_8_bit(tmp_path):
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    deep = np.full((4, 4), 0x8000, dtype=np.uint16)  # 16-bit gray, half scale
    root = _png_tree(tmp_path / "m", {("train", "a"): [rgb, np.full((4, 4), 7, np.uint8)],
                                      ("test", "a"): [deep]})  # fmt: skip
    d = load(root, tmp_path)
    assert d.train.images.shape == (2, 3, 4, 4)
    assert d.train.images[0, :, 0, 0].tolist() == [255, 0, 0]
    assert d.train.images[1, :, 0, 0].tolist() == [7, 7, 7]
    assert d.test.images[0, :, 0, 0].tolist() == [128, 128, 128]


def test_non_image_files_are_ignored_by_name_and_by_contents(tree, tmp_path):
    cat = tree / "train" / "cat"
    (cat / "notes.txt").write_text("not an image")
    (cat / ".DS_Store").write_bytes(b"\0" * 64)
    (cat / "._0000.jpg").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS resource fork
    (cat / "nested").mkdir()
    (cat / "fake.jpg").write_text("text with an image's name")
    (tree / "test" / ".ipynb_checkpoints").mkdir()
    with pytest.warns(UserWarning, match=r"ignored 1 file.*not JPEG or PNG.*fake\.jpg"):
        d = load(tree, tmp_path)
    assert len(d.train) == 18 and d.classes == ["cat", "dog", "ship"]


def test_images_of_different_sizes_name_one_odd_file(tree, tmp_path):
    (tree / "train" / "dog" / "big.png").write_bytes(png_bytes(np.zeros((40, 36, 3), np.uint8)))
    with pytest.raises(DataError, match=r"big\.png is 36x40 pixels but most images are 32x32"):
        load(tree, tmp_path)


def test_test_images_of_another_size_are_refused(tree, tmp_path):
    for p in (tree / "test").rglob("*.jpg"):
        p.unlink()
        p.with_suffix(".png").write_bytes(png_bytes(np.zeros((16, 16, 3), np.uint8)))
    with pytest.raises(DataError, match="test images in .* are 16x16 pixels, train images 32x32"):
        load(tree, tmp_path)


def _bomb_png(width, height):
    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_before_decoding(tree, tmp_path):
    bomb = tree / "train" / "cat" / "bomb.png"
    bomb.write_bytes(_bomb_png(50_000, 50_000))  # claims 2.5e9 pixels in 57 bytes
    assert parse_header(bomb.read_bytes()) == ("png", 50_000, 50_000, 3)
    with pytest.raises(DataError, match=f"bomb.png claims 50000x50000 pixels, more than the "
                                        f"{MAX_PIXELS:,}"):  # fmt: skip
        load(tree, tmp_path)
    with pytest.raises(DataError, match="decompression bomb"):
        read_image(bomb)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-40])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: shutil.rmtree(t / "test"), "has no test/ or val/ subfolder"),
        (lambda t: shutil.rmtree(t / "train"), "has no train/ subfolder"),
        (lambda t: [shutil.rmtree(p) for p in (t / "test").iterdir()], "has no class subfolders"),
        (lambda t: [p.unlink() for p in (t / "train" / "dog").iterdir()],
         r"class folder .*train/dog holds no JPEG or PNG images"),
        (lambda t: (t / "test" / "dog").rename(t / "test" / "horse"),
         "classes differ .*: only in train: dog; only in test: horse"),
        (lambda t: _truncate(t / "train" / "cat" / "0001.jpg"),
         r"cat/0001\.jpg is corrupt or truncated \(Image is incomplete or truncated\)"),
        (lambda t: (t / "test" / "ship" / "0002.jpg").write_bytes(b"\xff\xd8garbage" * 10),
         r"ship/0002\.jpg is corrupt or truncated"),
        (lambda t: (t / "train" / "cat" / "0003.jpg").write_bytes(b"\xff\xd8\xff"),
         r"cat/0003\.jpg is corrupt or truncated \(no image size"),
    ],
)  # fmt: skip
def test_bad_trees_are_one_line_data_errors_naming_the_place(tree, tmp_path, mutate, message):
    mutate(tree)
    with pytest.raises(DataError, match=message) as e:
        load(tree, tmp_path)
    assert "\n" not in str(e.value)


def test_missing_or_empty_folder_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"data folder not found: .*nope; folder:PATH needs"):
        load(tmp_path / "nope", tmp_path)
    with pytest.raises(DataError, match="folder: needs a path"):
        load_dataset("folder:", tmp_path)


def test_an_unreadable_class_folder_is_a_data_error(tree, tmp_path, monkeypatch):
    import os

    real = os.scandir

    def scandir(path):
        if str(path).endswith("dog"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)  # chmod does not bind root, which runs tests
    with pytest.raises(DataError, match=r"cannot read .*train/dog: Permission denied"):
        load(tree, tmp_path)


def test_skip_corrupt_skips_counts_and_warns(tree, tmp_path):
    _truncate(tree / "train" / "cat" / "0001.jpg")
    (tree / "test" / "dog" / "0000.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image\(s\)"):
        d = load(tree, tmp_path, skip_corrupt=True)
    assert d.skipped == 2 and len(d.train) == 17 and len(d.test) == 8
    assert d.train.labels.tolist() == [0] * 5 + [1] * 6 + [2] * 6


def test_a_class_left_empty_by_skipping_is_still_an_error(tree, tmp_path):
    for p in (tree / "test" / "ship").iterdir():
        p.write_bytes(b"\xff\xd8\xff")
    with warnings.catch_warnings(), pytest.raises(DataError, match="no readable JPEG"):
        warnings.simplefilter("ignore")
        load(tree, tmp_path, skip_corrupt=True)
