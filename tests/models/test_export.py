"""Exports agree with the PyTorch model: ONNX through onnxruntime, TorchScript, safetensors."""

import json
import warnings

import numpy as np
import pytest
import torch

import reslab
from reslab.errors import UserError
from reslab.infer.predict import read_any_image
from reslab.models import create_model, export
from reslab.models.fold import fold_batchnorm
from tests.conftest import sample_jpegs
from tests.infer.saved_model import MEAN, STD, write_model

ort = pytest.importorskip("onnxruntime")


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = create_model("resnet20")
    m(torch.randn(16, 3, 32, 32))  # non-trivial running statistics
    return m.eval()


@pytest.mark.parametrize("fold", [False, True])
def test_onnx_matches_pytorch_at_two_batch_sizes(model, tmp_path, fold):
    if fold:
        model, _ = fold_batchnorm(model)
    path = export.export_onnx(model, tmp_path / "m.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temp file left behind
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        x = torch.randn(batch, 3, 32, 32)
        (out,) = session.run(None, {"images": x.numpy()})
        with torch.no_grad():
            ref = model(x).numpy()
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_export_gives_a_training_model_its_mode_back(model, tmp_path):
    model.train()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export.export_onnx(model, tmp_path / "m.onnx")
    assert model.training
    assert not [w for w in caught if "legacy TorchScript-based" in str(w.message)]  # muted


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_round_trip(model, tmp_path):
    path = export.export_torchscript(model, tmp_path / "m.pt")
    loaded = torch.jit.load(str(path))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


@pytest.mark.parametrize("fold", [False, True])
def test_safetensors_round_trip(model, tmp_path, fold):
    from safetensors import safe_open
    from safetensors.torch import load_file

    fresh = create_model("resnet20").eval()
    if fold:
        model, _ = fold_batchnorm(model)
        fresh, _ = fold_batchnorm(fresh)
    path = export.export_safetensors(model, tmp_path / "m.safetensors", {"note": "x"})
    fresh.load_state_dict(load_file(str(path)), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == {"note": "x"}


def test_wrong_input_shape_is_a_user_error(model, tmp_path):
    with pytest.raises(UserError, match="does not fit the model"):
        export.export_onnx(model, tmp_path / "m.onnx", input_shape=(1, 1, 32, 32))
    assert not list(tmp_path.iterdir())


def test_non_string_metadata_is_a_user_error(model, tmp_path):
    with pytest.raises(UserError, match="str to str"):
        export.export_safetensors(model, tmp_path / "m.safetensors", {"epochs": 3})


# -- graphs usable on their own: normalization inside, metadata beside ---------------------------

DATA = {
    "dataset": "cifar10-sample",
    "classes": [f"class{i}" for i in range(10)],
    "mean": list(MEAN),
    "std": list(STD),
    "in_channels": 3,
    "image_size": [32, 32],
}


def _raw_and_normalized(pixels: torch.Tensor, input: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images as the input convention `input` takes them, and normalized as the model
    itself takes them."""
    x = pixels.float() / 255
    normalized = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return (pixels if input == "uint8" else x), normalized


def _random_pixels(batch: int) -> torch.Tensor:
    return torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("input", ["float", "uint8"])
def test_onnx_normalizes_inside_and_carries_its_metadata(model, tmp_path, fold, input):
    onnx = pytest.importorskip("onnx")
    net = fold_batchnorm(model)[0] if fold else model
    wrapped = export.Normalized(net, MEAN, STD, input)
    meta = export.deployment_metadata("resnet20", DATA, input)
    path = export.export_onnx(wrapped, tmp_path / "m.onnx", metadata=meta)
    assert not wrapped.training and not model.training  # wrapping and exporting keep eval mode
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dtype = "tensor(uint8)" if input == "uint8" else "tensor(float)"
    assert session.get_inputs()[0].type == dtype
    for batch in (1, 5):
        raw, normalized = _raw_and_normalized(_random_pixels(batch), input)
        (out,) = session.run(None, {"images": raw.numpy()})
        with torch.no_grad():
            ref = model(normalized).numpy()
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props == session.get_modelmeta().custom_metadata_map == export._as_text(meta)
    assert json.loads(props["classes"]) == DATA["classes"]
    assert json.loads(props["mean"]) == list(MEAN) and json.loads(props["image_size"]) == [32, 32]
    assert props["model"] == "resnet20" and props["input"] == export.INPUTS[input].text


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("input", ["float", "uint8"])
def test_torchscript_normalizes_inside_and_carries_its_metadata(model, tmp_path, input):
    meta = export.deployment_metadata("resnet20", DATA, input)
    wrapped = export.Normalized(model, MEAN, STD, input)
    path = export.export_torchscript(wrapped, tmp_path / "m.pt", metadata=meta)
    extra = {export.TORCHSCRIPT_METADATA: ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    raw, normalized = _raw_and_normalized(_random_pixels(3), input)
    with torch.no_grad():
        torch.testing.assert_close(loaded(raw), model(normalized), atol=1e-5, rtol=1e-5)
    stored = json.loads(extra[export.TORCHSCRIPT_METADATA])
    assert stored == meta and stored["classes"] == DATA["classes"]  # a list, not JSON text


def test_unknown_input_convention_is_a_user_error(model):
    with pytest.raises(UserError, match="allowed: float, uint8"):
        export.Normalized(model, MEAN, STD, "float16")


# -- reslab export as a user runs it -----------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("saved") / "model.safetensors")


@pytest.mark.parametrize("input", ["float", "uint8"])
def test_cli_onnx_takes_raw_images_and_agrees_with_predict(saved, tmp_path, input, cli):
    images = []
    for cls in ("cat", "ship", "frog"):
        images.append(tmp_path / f"{cls}.jpg")
        images[-1].write_bytes(sample_jpegs("test")[cls][0])
    out = tmp_path / "m.onnx"
    r = cli("export", saved, "--format", "onnx", "--fold-bn", "--input", input, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "BatchNorm layers folded" in r.stdout and export.INPUTS[input].text in r.stdout
    # The sample's images are 32x32, the model's size: their decoded pixels are the input.
    raw, normalized = _raw_and_normalized(torch.stack([read_any_image(p) for p in images]), input)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": raw.numpy()})[0]
    loaded = reslab.load(saved)
    with torch.no_grad():
        np.testing.assert_allclose(got, loaded.model(normalized).numpy(), rtol=1e-4, atol=1e-4)
    predicted = [p.top[0][0] for p in reslab.predict(loaded, images, top_k=1)]
    classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    assert [classes[i] for i in got.argmax(1)] == predicted


def test_cli_refuses_input_for_safetensors(saved, cli):
    r = cli("export", saved, "--format", "safetensors", "--input", "uint8")
    assert r.returncode == 2 and "safetensors holds weights only" in r.stderr
    assert r.stderr.count("\n") == 1
