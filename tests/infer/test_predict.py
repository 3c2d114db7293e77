"""`reslab predict`: images prepared as torchvision's eval transforms prepare them, any format
Pillow reads, one-line errors for files that are not images, and the device flag."""

import io
import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image, features
from torchvision.transforms import v2

import reslab
from reslab.errors import DataError
from reslab.infer.predict import fit, load_images, read_any_image
from tests.conftest import CLASSES, sample_jpegs
from tests.infer.saved_model import MEAN, STD, write_model

needs_webp = pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "model.safetensors")


def _photo() -> np.ndarray:
    """A real, non-square photo: six test images of the sample, 2 rows by 3, (64, 96, 3) uint8."""
    tiles = [np.array(Image.open(io.BytesIO(b))) for b in sample_jpegs("test")["cat"][:6]]
    return np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:], 1)], 0)


def _torchvision(image: torch.Tensor, resize, crop) -> torch.Tensor:
    return v2.Compose([v2.Resize(resize), v2.CenterCrop(crop)])(image)


# -- resize and crop ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(45, 61), (61, 45), (20, 27), (33, 100), (32, 48), (33, 33)])
def test_fit_is_torchvision_resize_then_center_crop(shape):
    torch.manual_seed(0)
    x = torch.rand(3, *shape)
    got = fit(x, (32, 32))
    assert got.shape == (3, 32, 32)
    torch.testing.assert_close(got, _torchvision(x, 32, 32), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("shape", "resized"), [((30, 30), (40, 40)), ((100, 50), (80, 40))])
def test_fit_covers_a_non_square_input_then_crops(shape, resized):
    x = torch.rand(3, *shape)
    got = fit(x, (24, 40))
    torch.testing.assert_close(got, _torchvision(x, resized, (24, 40)), atol=1e-5, rtol=0)


def test_an_image_of_the_models_size_is_untouched():
    x = torch.rand(3, 32, 32)
    assert fit(x, (32, 32)) is x


def test_a_photo_file_is_prepared_as_torchvisions_eval_transforms_do(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(_photo()).save(path)
    data = reslab.load(write_model(tmp_path / "m.safetensors")).data
    decoded = torch.from_numpy(_photo()).permute(2, 0, 1)
    expected = _torchvision(v2.ToDtype(torch.float32, scale=True)(decoded), 32, 32)
    torch.testing.assert_close(load_images([path], data)[0], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [3, 1])
def test_predict_is_the_model_on_normalized_prepared_images(tmp_path, channels):
    path = tmp_path / "wide.png"
    Image.fromarray(_photo()).save(path)
    loaded = reslab.load(write_model(tmp_path / "m.safetensors", in_channels=channels))
    (pred,) = reslab.predict(loaded, [path], top_k=len(CLASSES), device="cpu")
    mean = torch.tensor(MEAN[:channels]).view(-1, 1, 1)
    std = torch.tensor(STD[:channels]).view(-1, 1, 1)
    x = (load_images([path], loaded.data) - mean) / std
    with torch.no_grad():
        probs = torch.softmax(loaded.model(x), 1)[0]
    assert {c: p for c, p in pred.top} == pytest.approx(
        {c: p for c, p in zip(CLASSES, probs.tolist(), strict=True)}, abs=1e-5
    )


# -- what Pillow reads ---------------------------------------------------------------------------


def _save(tmp_path, pixels: np.ndarray, mode: str, fmt: str):
    path = tmp_path / f"image.{fmt.lower()}"
    image = Image.fromarray(pixels).convert(mode)
    image.save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return path, image


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        pytest.param("WEBP", "RGB", marks=needs_webp),
        pytest.param("WEBP", "RGBA", marks=needs_webp),
        ("BMP", "RGB"),
        ("BMP", "L"),
        ("GIF", "P"),
        ("TIFF", "RGB"),
        ("TIFF", "L"),
        ("TIFF", "RGBA"),
    ],
)
@pytest.mark.parametrize("channels", [3, 1])
def test_formats_pillow_reads_become_the_models_channels(tmp_path, fmt, mode, channels):
    path, image = _save(tmp_path, _photo(), mode, fmt)
    got = read_any_image(path, channels)
    target = "L" if channels == 1 else "RGB"
    # Every format here is lossless: the pixels written, in the model's channels as Pillow
    # converts them.
    want = np.array(image.convert(target)).reshape(64, 96, channels)
    assert got.dtype == torch.uint8 and got.shape == (channels, 64, 96)
    np.testing.assert_array_equal(got.permute(1, 2, 0).numpy(), want)


@needs_webp
def test_cli_predicts_a_webp_as_the_same_png(model_file, tmp_path, cli):
    png, _ = _save(tmp_path, _photo(), "RGB", "PNG")
    webp, _ = _save(tmp_path, _photo(), "RGB", "WEBP")
    r = cli("predict", model_file, png, webp, "--json", "--top-k", "3", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    a, b = json.loads(r.stdout)
    assert b["image"] == str(webp) and len(a["top"]) == 3 and a["top"] == b["top"]


def test_cli_refuses_a_text_file_in_one_line(model_file, tmp_path, cli):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello, not an image\n")
    r = cli("predict", model_file, notes)
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {notes} is not an image Pillow can read (")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_empty_and_truncated_files_are_data_errors(tmp_path):
    (tmp_path / "empty.gif").write_bytes(b"")
    with pytest.raises(DataError, match="not an image Pillow can read .the file is empty"):
        read_any_image(tmp_path / "empty.gif")
    path, _ = _save(tmp_path, _photo(), "RGB", "BMP")
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_any_image(path)


@pytest.mark.parametrize("side", [10_000, 20_000])  # above Pillow's limit; above twice that
def test_decompression_bombs_are_refused_from_the_header(tmp_path, side):
    path, _ = _save(tmp_path, _photo(), "RGB", "BMP")
    header = bytearray(path.read_bytes())
    header[18:26] = struct.pack("<ii", side, side)  # BITMAPINFOHEADER width, height
    path.write_bytes(bytes(header))
    with pytest.raises(DataError, match="decompression bomb"):
        read_any_image(path)


# -- the device --------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cli_device_cuda_without_cuda_is_one_line(model_file, tmp_path, cli):
    image = tmp_path / "cat.jpg"
    image.write_bytes(sample_jpegs("test")["cat"][0])
    r = cli("predict", model_file, image, "--device", "cuda")
    assert r.returncode == 2 and "no CUDA device" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.gpu
def test_predict_on_cuda_agrees_with_cpu(model_file, tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(_photo()).save(path)
    cpu = reslab.predict(model_file, [path], top_k=10, device="cpu")[0].top
    cuda = reslab.predict(model_file, [path], top_k=10, device="cuda")[0].top
    assert [c for c, _ in cuda[:3]] == [c for c, _ in cpu[:3]]
    assert dict(cuda) == pytest.approx(dict(cpu), abs=1e-4)


@pytest.mark.gpu
def test_a_loaded_model_stays_on_the_cpu_after_use_on_cuda(model_file, tmp_path):
    """evaluate and predict run on CUDA and give the model back on the CPU, as LoadedModel
    documents: exporting the same object afterwards works."""
    path = tmp_path / "wide.png"
    Image.fromarray(_photo()).save(path)
    loaded = reslab.infer.load(model_file)
    reslab.predict(loaded, [path], device="cuda")
    assert all(p.device.type == "cpu" for p in loaded.model.parameters())
    with loaded.on(torch.device("cuda")) as net:
        assert next(net.parameters()).is_cuda
    assert next(loaded.model.parameters()).device.type == "cpu"
