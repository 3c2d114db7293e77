"""Exports agree with the PyTorch model: ONNX through onnxruntime, TorchScript, safetensors."""

import numpy as np
import pytest
import torch

from reslab.models import create_model, export
from reslab.models.fold import fold_batchnorm

ort = pytest.importorskip("onnxruntime")


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = create_model("resnet20")
    m(torch.randn(16, 3, 32, 32))  # non-trivial running statistics
    return m.eval()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("fold", [False, True])
def test_onnx_matches_pytorch_at_two_batch_sizes(model, tmp_path, fold):
    if fold:
        model, _ = fold_batchnorm(model)
    path = export.export_onnx(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        x = torch.randn(batch, 3, 32, 32)
        (out,) = session.run(None, {"images": x.numpy()})
        np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-4, atol=1e-4)


def test_torchscript_round_trip(model, tmp_path):
    path = export.export_torchscript(model, tmp_path / "m.pt")
    loaded = torch.jit.load(str(path))
    x = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))


def test_safetensors_round_trip(model, tmp_path):
    from safetensors.torch import load_file

    path = export.export_safetensors(model, tmp_path / "m.safetensors", {"note": "x"})
    fresh = create_model("resnet20").eval()
    fresh.load_state_dict(load_file(str(path)), strict=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(fresh(x), model(x))
