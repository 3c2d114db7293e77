"""Shared benchmark helpers: machine facts, medians, the matrix-product ceiling, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable

import torch


def machine() -> dict:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": device,
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()  # host-device sync: timing must wait for queued kernels


def median_time(fn: Callable[[], None], repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    n: int | None = None,
    repeats: int = 10,
) -> float:
    """The machine's practical ceiling: n^3 matrix products per second in `dtype`, in GFLOP/s
    (n: 8192 on CUDA, 2048 on the CPU unless given)."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):  # warm-up: thread pools and clocks
        a @ b
    seconds = median_time(lambda: a @ b, repeats, device)
    return 2 * n**3 / seconds / 1e9


def write_json(path: str | None, payload: dict) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"wrote {path}")


def _rss_bytes(pid: int | str) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # the process ended between listing and reading
        return 0


def _children(pid: int) -> list[str]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += f.read().split()
    except OSError:
        pass
    return found


class PeakMemory:
    """Peak memory while the block runs, in MiB. On CUDA: the caching allocator's peak. On the
    CPU (Linux): the peak resident set of this process plus its child processes (DataLoader
    workers), sampled every `interval` seconds by a thread; None where /proc is missing."""

    def __init__(self, device: torch.device, interval: float = 0.005):
        self.device, self.interval, self.mib = device, interval, None
        self._stop = threading.Event()

    def _sample(self) -> None:
        pid, peak = os.getpid(), 0
        while not self._stop.is_set():
            peak = max(peak, _rss_bytes(pid) + sum(_rss_bytes(c) for c in _children(pid)))
            self._stop.wait(self.interval)
        self.mib = peak / 2**20

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        elif os.path.isdir("/proc/self"):
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.mib = torch.cuda.max_memory_allocated() / 2**20
        elif hasattr(self, "_thread"):
            self._stop.set()
            self._thread.join()
