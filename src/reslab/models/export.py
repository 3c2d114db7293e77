"""Export a model for deployment: ONNX, TorchScript or safetensors, each written atomically."""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from reslab.errors import UserError
from reslab.io import atomic_path


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


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_shape: Sequence[int] = (1, 3, 32, 32),
    opset: int = 17,
) -> Path:
    """ONNX graph with input "images" and output "logits", both with a dynamic batch axis."""
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
        return _atomic_export(path, lambda tmp: torch.onnx.export(model, (x,), tmp, **kwargs))


def export_torchscript(
    model: nn.Module, path: str | Path, input_shape: Sequence[int] = (1, 3, 32, 32)
) -> Path:
    """A traced TorchScript module; these nets have no data-dependent control flow to lose."""
    with _eval_mode(model), warnings.catch_warnings():
        # torch 2.14 marks torch.jit deprecated; still what libtorch's torch::jit::load reads.
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
        x = _example_input(model, input_shape)
        traced = torch.jit.trace(model, x)
        return _atomic_export(path, lambda tmp: torch.jit.save(traced, tmp))


def export_safetensors(
    model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """The state dict as safetensors (no pickle: safe to load from untrusted sources)."""
    from safetensors.torch import save_file

    if metadata is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise UserError("safetensors metadata must map str to str; json.dumps other values first")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return _atomic_export(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
