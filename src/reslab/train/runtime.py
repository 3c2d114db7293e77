"""Where and how the math runs: device, precision, seeds and random-number state."""

from __future__ import annotations

import contextlib
import os
import random
import re
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from reslab.errors import ConfigError

if TYPE_CHECKING:
    from reslab.train.config import TrainConfig

# precision -> the autocast dtype of the forward pass (None: plain fp32).
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
DEVICES = ("auto", "cpu", "cuda")
# The config's choices: "auto" is resolved per machine before a run starts (resolve_precision).
PRECISION_CHOICES = ("auto", *PRECISIONS)


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX), where bf16 autocast runs
    faster than fp32 (1.3-2.5x, docs/speed.md); without them it is several times slower."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:  # not Linux: no way to tell, so the safe choice
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto`: bf16 on CUDA (where the GPU supports it) and on CPUs with bf16 instructions,
    fp32 elsewhere; any other value as it is."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device: 'cuda' was asked for but no CUDA device is visible; use --device cpu"
        )
    return torch.device(name)


def check_runtime(config: TrainConfig) -> torch.device:
    """The device a run will use, after refusing what this machine cannot run: checked once,
    up front, before any data is read or any process launched."""
    import importlib.util

    precision, sync_bn = config.precision, config.sync_bn
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "tensorboard: the tensorboard package is not installed; pip install "
            "'reslab[tensorboard]', or drop --tensorboard"
        )
    device = resolve_device(config.device)
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision: fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    if sync_bn and device.type != "cuda":
        raise ConfigError(
            "sync_bn: SyncBatchNorm needs CUDA devices; without it, reslab "
            "averages BN statistics across ranks before evaluating and saving"
        )
    return device


def autocast(
    device: torch.device, precision: str
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts for the forward pass (fp32: a no-op context)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


class CompiledOrEager(nn.Module):
    """`torch.compile(module)`, falling back to `module` itself if compilation fails.

    torch.compile compiles lazily, at the first call; on a machine without a working C++
    compiler (Inductor's CPU backend needs one) or with an unsupported GPU, that call raises.
    The failure comes before the compiled graph runs, so nothing (BN statistics included) has
    changed yet: the call is repeated eagerly, a warning says why, and the run goes on eagerly.
    Errors in the module itself are not caught here: the eager retry would raise them anyway.
    """

    def __init__(self, module: nn.Module, backend: str | Callable = "inductor"):
        super().__init__()
        self.eager = module
        self.compiled: Callable | None = torch.compile(module, backend=backend)

    def forward(self, *args, **kwargs):
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except torch._dynamo.exc.BackendCompilerFailed as e:
                self.compiled = None
                cause = getattr(e, "inner_exception", None) or e
                text = str(cause).strip()
                reason = type(cause).__name__ + (f": {text.splitlines()[0]}" if text else "")
                warnings.warn(
                    f"torch.compile failed, training continues without it: {reason}",
                    stacklevel=1,
                )
        return self.eager(*args, **kwargs)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS is deterministic only with a fixed workspace, read when its handle is created:
        # set here, before the run's first matrix product (a user's own setting is kept).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: a few CUDA kernels have no deterministic version; say so rather than fail.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:  # undo an earlier deterministic run in this process (experiments run several)
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = True


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, _, gauss = random.getstate()
    random.setstate((version, tuple(state["python"]), gauss))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)
