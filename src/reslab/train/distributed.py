"""Multi-process training on PyTorch's own distributed engine (torchrun + DDP).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; with them present, training joins the process
group (NCCL on CUDA, gloo on the CPU). Every collective here is called by every rank.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """The processes of a run. Every collective is a method here, and each is a no-op for one
    process, so the training loop reads the same with one rank or many."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """`t` summed over ranks, in place."""
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def agree(self, flag: bool, at_check: bool, device: torch.device) -> bool:
        """A decision to stop or to checkpoint: one process takes it at once; several take it
        together, at check points only, True on every rank if it is True on any (a rank that
        left the loop alone would leave the others waiting in their next collective)."""
        if not self.enabled:
            return flag
        if not at_check:
            return False
        t = torch.tensor([float(flag)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())  # host-device sync

    def smallest(self, value: int, device: torch.device) -> int:
        """The smallest of every rank's value, on every rank: a length fitted to each rank's
        clock must be one length, or the ranks would leave the loop at different steps."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return int(t.item())  # host-device sync

    @torch.no_grad()
    def average_norm_statistics(self, model: nn.Module) -> None:
        """Average BN running statistics over ranks (each rank saw different batches), so
        evaluation and the saved model do not depend on which rank saved it."""
        if not self.enabled:
            return
        for m in model.modules():
            if getattr(m, "running_mean", None) is not None and not isinstance(m, nn.SyncBatchNorm):
                for buf in (m.running_mean, m.running_var):
                    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                    buf.div_(self.size)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


SINGLE = World()  # one process, no process group


def from_env() -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), size)


def restarted() -> bool:
    """True in a worker that torchrun --max-restarts started again after a failure."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def init(world: World, device: torch.device) -> None:
    if not world.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    store, rank, size = next(dist.rendezvous("env://"))
    # torchrun keeps one store for all its restarts, and the previous attempt's keys (each rank's
    # gloo address among them) are still in it: a restarted rank could read a dead peer's address
    # and fail or hang connecting. A prefix per attempt gives every attempt keys of its own.
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"reslab/attempt_{attempt}", store)
    dist.init_process_group(backend, store=store, rank=rank, world_size=size)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def device_for(world: World, device: torch.device) -> torch.device:
    """One GPU per process: LOCAL_RANK picks it."""
    if device.type == "cuda" and world.enabled:
        return torch.device("cuda", world.local_rank)
    return device


def wrap(model: nn.Module, world: World, device: torch.device, sync_bn: bool) -> nn.Module:
    """The module the training step calls: DDP over the model when there are several ranks."""
    if sync_bn:  # CUDA only: refused up front by runtime.check_runtime
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if not world.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    # broadcast_buffers=False: each rank keeps the BN statistics of its own batches, and they are
    # averaged before evaluation and saving, rather than rank 0's overwriting the others'. Newer
    # torch warns that the flag is deprecated; its replacement still syncs buffers at init, and
    # the flag keeps working, so the warning is silenced here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


ERROR_FILE_ENV = "RESLAB_ERROR_FILE"  # where a worker leaves the one line a user should see


def report_worker_error(message: str, exit_code: int) -> None:
    """In a worker started by `launch_local`: leave the error's line and exit code for it."""
    path = os.environ.get(ERROR_FILE_ENV)
    if path and not os.path.exists(path):  # the first rank to fail speaks for all
        with open(path, "w") as f:
            f.write(f"{exit_code}\n{message}")


def launch_local(nproc: int, argv: list[str]) -> tuple[int, str | None]:
    """Run `python -m reslab ARGV` under torchrun with `nproc` processes on this machine.

    Returns (exit code, message). When a worker failed on a user error, that is its exit code
    and its one line, and torchrun's own report of the failure is left out; otherwise torchrun's
    exit code, with everything it printed passed through."""
    import subprocess
    import sys
    import tempfile

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "reslab",
        *argv,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        error_file = os.path.join(tmp, "error")
        env = {**os.environ, ERROR_FILE_ENV: error_file}
        proc = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
        if proc.returncode and os.path.exists(error_file):
            with open(error_file) as f:
                code, message = f.read().split("\n", 1)
            return int(code), message
    sys.stderr.write(proc.stderr)
    return proc.returncode, None
