"""What a run needs of this machine: the checks before it starts, torch.compile with an eager
fallback, seeds and the random-number state a checkpoint keeps."""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable

import torch
from torch import nn

from reslab.errors import ConfigError
from reslab.run.config import TrainConfig
from reslab.run.device import resolve_device


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
