"""Export a model for deployment: ONNX, TorchScript or safetensors, each written atomically."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from safetensors.torch import save
from torch import nn

from reslab.io import atomic_write


def export_onnx(
    model: nn.Module, path: str | Path, input_shape=(1, 3, 32, 32), opset: int = 17
) -> Path:
    """ONNX with a dynamic batch axis."""
    model = model.eval()
    x = torch.randn(*input_shape)
    kwargs = dict(
        input_names=["images"],
        output_names=["logits"],
        opset_version=opset,
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
    )
    # The TorchScript-based exporter needs no onnxscript; newer torch defaults to dynamo=True.
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False

    def write(f):
        torch.onnx.export(model, (x,), f, **kwargs)

    return atomic_write(path, write)


def export_torchscript(model: nn.Module, path: str | Path, input_shape=(1, 3, 32, 32)) -> Path:
    traced = torch.jit.trace(model.eval(), torch.randn(*input_shape))
    return atomic_write(path, lambda f: torch.jit.save(traced, f))


def export_safetensors(
    model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda f: f.write(save(tensors, metadata=metadata)))
