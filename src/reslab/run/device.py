"""Where and in what precision the math runs: the device and precision names a config may use,
resolved for this machine, and the autocast context of the forward pass."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import torch

from reslab.errors import ConfigError

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
    faster than fp32; without them it is several times slower (docs/speed.md measures both)."""
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


def autocast(
    device: torch.device, precision: str
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts for the forward pass (fp32: a no-op context)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)
