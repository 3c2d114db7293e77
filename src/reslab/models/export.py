"""Export a model for deployment: ONNX, TorchScript or safetensors, each written atomically.

A graph for use without reslab is the model wrapped in `Normalized`: it takes raw images (float
in [0, 1], or uint8 in [0, 255]) and normalizes them itself; `deployment_metadata` says what it
takes and which logit is which class, and the ONNX and TorchScript files carry that beside it.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from reslab.errors import UserError
from reslab.io import atomic_path


class InputKind(NamedTuple):
    dtype: torch.dtype
    full_scale: float  # the pixel value of full intensity
    text: str  # as the metadata and the docs state it


# How an exported graph takes its images, by `reslab export --input`.
INPUTS = {
    "float": InputKind(torch.float32, 1.0, "NCHW float32 in [0, 1]"),
    "uint8": InputKind(torch.uint8, 255.0, "NCHW uint8 in [0, 255]"),
}
DEFAULT_INPUT = "float"
TORCHSCRIPT_METADATA = "metadata.json"  # the extra file of a TorchScript export that holds it


def input_kind(name: str) -> InputKind:
    if name not in INPUTS:
        raise UserError(f"input: unknown value {name!r}; allowed: {', '.join(INPUTS)}")
    return INPUTS[name]


class Normalized(nn.Module):
    """`model` with its input normalization inside: takes raw images (N, C, H, W) as `input`
    says, float in [0, 1] or uint8 in [0, 255], and returns model((x / full_scale - mean) / std).
    What an exported graph needs to be used on its own, and what `reslab.predict` runs."""

    def __init__(self, model: nn.Module, mean, std, input: str = DEFAULT_INPUT):
        super().__init__()
        kind = input_kind(input)
        self.model = model
        self.input_dtype = kind.dtype
        # (x / s - mean) / std == (x - s * mean) / (s * std): one subtraction and one division
        # in the graph for either input kind.
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", kind.full_scale * torch.tensor(mean).float().view(shape))
        self.register_buffer("std", kind.full_scale * torch.tensor(std).float().view(shape))
        self.train(model.training)  # a new Module trains; wrapping must not change the mode

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images.to(self.mean.dtype) - self.mean) / self.std)


def deployment_metadata(
    model_name: str, data: dict, input: str = DEFAULT_INPUT
) -> dict[str, object]:
    """What a user of an exported `Normalized` graph needs: the classes in logit order, the input
    convention, and the normalization already inside, as JSON values (ONNX, whose metadata holds
    strings only, stores lists and numbers as JSON text)."""
    return {
        "model": model_name,
        "dataset": str(data["dataset"]),
        "classes": list(data["classes"]),
        "input": input_kind(input).text,
        "in_channels": int(data["in_channels"]),  # 3: RGB, 1: grayscale
        "image_size": list(data["image_size"]),  # [height, width]
        "mean": [float(v) for v in data["mean"]],  # of [0, 1] pixels, per channel
        "std": [float(v) for v in data["std"]],
    }


def _check_metadata(metadata: dict | None, what: str) -> None:
    if metadata is None:
        return
    try:
        json.dumps(metadata)
    except (TypeError, ValueError):
        raise UserError(f"{what} metadata must be JSON values under string keys") from None
    if not all(isinstance(k, str) for k in metadata):
        raise UserError(f"{what} metadata must be JSON values under string keys")


def _check_text_metadata(metadata: dict | None, what: str) -> None:
    if metadata is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise UserError(f"{what} metadata must map str to str; json.dumps other values first")


def _as_text(metadata: dict[str, object]) -> dict[str, str]:
    """ONNX metadata_props are strings: a string stays itself, anything else becomes JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def _atomic_export(path: str | Path, write: Callable[[str], None]) -> Path:
    """Run `write(tmp_name)` beside `path`, then fsync and rename: a crash leaves no half file."""
    with atomic_path(path) as tmp:
        write(str(tmp))
    return Path(path)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Export in eval mode (running BN statistics), then give the caller its mode back."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _example_input(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    if isinstance(model, Normalized) and model.input_dtype == torch.uint8:
        x = torch.randint(0, 256, tuple(input_shape), dtype=torch.uint8, device=device)
    else:
        x = torch.randn(*input_shape, device=device)
    try:
        with torch.no_grad():
            model(x)
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"input shape {tuple(input_shape)} does not fit the model ({first}); pass the "
            "(batch, channels, height, width) it was trained on"
        ) from None
    return x


def _write_onnx_metadata(path: str, metadata: dict[str, str]) -> None:
    try:
        import onnx
    except ImportError:
        raise UserError(
            "writing ONNX metadata needs the onnx package: pip install 'reslab[export]'"
        ) from None
    proto = onnx.load(path)
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, path)


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_shape: Sequence[int] = (1, 3, 32, 32),
    opset: int = 17,
    metadata: dict[str, object] | None = None,
) -> Path:
    """ONNX graph with input "images" and output "logits", both with a dynamic batch axis;
    `metadata` goes into the model's metadata_props. The input's dtype is float32, or a
    `Normalized` model's."""
    _check_metadata(metadata, "ONNX")
    kwargs = dict(
        input_names=["images"],
        output_names=["logits"],
        opset_version=opset,
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
    )
    # torch >= 2.9 defaults to the torch.export-based exporter, which needs onnxscript. The
    # TorchScript-based one (dynamo=False) needs nothing extra and handles these plain CNNs; it
    # is deprecated but still shipped (checked on torch 2.14).
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with _eval_mode(model), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX")
        # Option-A shortcuts subsample with x[:, :, ::2, ::2]; the Slice stays unfolded, harmlessly.
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1")
        x = _example_input(model, input_shape)

        def write(tmp: str) -> None:
            torch.onnx.export(model, (x,), tmp, **kwargs)
            if metadata:
                _write_onnx_metadata(tmp, _as_text(metadata))

        return _atomic_export(path, write)


def export_torchscript(
    model: nn.Module,
    path: str | Path,
    input_shape: Sequence[int] = (1, 3, 32, 32),
    metadata: dict[str, object] | None = None,
) -> Path:
    """A traced TorchScript module; these nets have no data-dependent control flow to lose.
    `metadata` is saved as JSON in the extra file TORCHSCRIPT_METADATA (read it back with
    `torch.jit.load(path, _extra_files={TORCHSCRIPT_METADATA: ""})`)."""
    _check_metadata(metadata, "TorchScript")
    extra = {TORCHSCRIPT_METADATA: json.dumps(metadata)} if metadata else {}
    with _eval_mode(model), warnings.catch_warnings():
        # torch 2.14 marks torch.jit deprecated; still what libtorch's torch::jit::load reads.
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
        x = _example_input(model, input_shape)
        traced = torch.jit.trace(model, x)
        return _atomic_export(path, lambda tmp: torch.jit.save(traced, tmp, _extra_files=extra))


def export_safetensors(
    model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """The state dict as safetensors (no pickle: safe to load from untrusted sources)."""
    from safetensors.torch import save_file

    _check_text_metadata(metadata, "safetensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return _atomic_export(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
