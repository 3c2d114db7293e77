"""Exports agree with the PyTorch model: ONNX through onnxruntime, TorchScript, safetensors."""

import warnings

import numpy as np
import pytest
import torch

from reslab.errors import UserError
from reslab.models import create_model, export
from reslab.models.fold import fold_batchnorm

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
