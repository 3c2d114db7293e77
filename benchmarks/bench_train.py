"""Training throughput: reslab's own training loop against the usual PyTorch tutorial pipeline.

    python benchmarks/bench_train.py --models resnet20 resnet56 resnet18_cifar --batch-sizes 128
    python benchmarks/bench_train.py --models --imagenet resnet50 resnet18 --precision bf16

reslab: `reslab.fit` itself (the function `reslab train` calls) on the data set, with the
device-resident loader, channels-last, --precision autocast and optionally --compile. The timed
steps are steps of that loop: a `should_stop` hook marks the first and last timed step, so what is
timed is the code users run, scheduler, EMA and loss bookkeeping included.

Baseline, side by side in this process: the tutorial pipeline (uint8 arrays -> PIL ->
RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize in a DataLoader with --workers worker
processes, as many as the machine has cores by default), an eager fp32 model in the default memory
format, torch.optim.SGD.

Each figure: --steps steps timed after --warmup steps (compilation and cuDNN's algorithm search
fall in the warm-up). An epoch's time is steps-per-epoch times the step time. Peak memory: on
CUDA the allocator's peak; on the CPU the peak resident set of the process and its DataLoader
workers. Achieved TFLOP/s (forward and backward FLOPs counted by torch.utils.flop_counter) is
given as a fraction of a matrix product's rate measured in the same run, in the precision the
run uses (bf16 or fp32): the machine's practical ceiling.

--imagenet MODEL... times ImageNet-size networks at 224x224 on synthetic batches through the
engine's own step (`reslab.train.engine.train_step` on the parts `reslab.train.setup.assemble`
builds), eager and, with --compile, compiled.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from bench_loader import baseline_loader  # noqa: E402
from common import PeakMemory, machine, matmul_gflops, sync, write_json  # noqa: E402

from reslab.data import holdout, load_dataset  # noqa: E402
from reslab.models import create_model  # noqa: E402
from reslab.run.device import resolve_device  # noqa: E402
from reslab.run.model import build_model  # noqa: E402
from reslab.train import build_config, fit  # noqa: E402
from reslab.train.engine import train_step  # noqa: E402
from reslab.train.setup import assemble  # noqa: E402
from reslab.train.stop import StopRequested  # noqa: E402


def train_flops(model, batch: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        model(batch).sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


class StepClock:
    """A `should_stop` hook for `reslab.fit`: times steps warmup+1 .. warmup+steps of the real
    loop (synchronizing the device at both ends), then asks the loop to stop."""

    def __init__(self, warmup: int, steps: int, device: torch.device):
        self.warmup, self.steps, self.device = warmup, steps, device
        self.start = self.seconds = None

    def __call__(self, step: int) -> bool:
        if step == self.warmup:
            sync(self.device)
            self.start = time.perf_counter()
        elif step == self.warmup + self.steps:
            sync(self.device)
            self.seconds = time.perf_counter() - self.start
            return True
        return False


def reslab_run(name: str, batch_size: int, args, device: torch.device) -> dict:
    """Steady step time of `reslab.fit` on the data, and its peak memory."""
    settings = {
        "model": name,
        "dataset": args.data,
        "data_dir": args.data_dir or "",
        "batch_size": batch_size,
        "val_split": 0,
        "device": device.type,
        "precision": args.precision,
        "compile": args.compile,
        "channels_last": True,
        "max_steps": args.warmup + args.steps + 1,
        "checkpoint_every": 0,
        "check_every": 50,
    }
    config = build_config({"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}, settings)
    clock = StepClock(args.warmup, args.steps, device)
    stopped = contextlib.suppress(StopRequested)  # the clock's way out after the timed steps
    with PeakMemory(device) as peak, tempfile.TemporaryDirectory() as out, stopped:
        fit(config, Path(out) / "run", quiet=True, should_stop=clock)
    if clock.seconds is None:
        raise SystemExit(f"{name}: the run ended before {args.warmup + args.steps} steps")
    return {"step_s": clock.seconds / args.steps, "peak_mib": peak.mib}


def baseline_run(name, batch_size, data, args, device) -> dict:
    """The tutorial pipeline: DataLoader workers, eager fp32, default memory format."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=data.num_classes).to(device)
    train_set, _ = holdout(data, 0, 0)
    loader = baseline_loader(train_set, data.mean, data.std, batch_size, args.workers, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def batches(loader):
        while True:
            for x, y in loader:
                yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def step(x, y):
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with PeakMemory(device) as peak:
        it = batches(loader)
        for x, y in itertools.islice(it, args.warmup):
            step(x, y)
        sync(device)
        start = time.perf_counter()
        for x, y in itertools.islice(it, args.steps):
            step(x, y)
        sync(device)
        seconds = time.perf_counter() - start
    del it, loader  # stop the workers before the next pipeline runs
    return {"step_s": seconds / args.steps, "peak_mib": peak.mib}


def bench_one(name, batch_size, data, args, device, ceiling) -> dict:
    flops = train_flops(
        create_model(name, num_classes=data.num_classes).to(device),
        torch.randn(batch_size, data.in_channels, *data.image_size, device=device),
    )
    base = baseline_run(name, batch_size, data, args, device)
    fast = reslab_run(name, batch_size, args, device)
    steps_per_epoch = len(holdout(data, 0, 0)[0]) // batch_size
    return {
        "model": name,
        "batch_size": batch_size,
        "baseline_images_per_s": batch_size / base["step_s"],
        "reslab_images_per_s": batch_size / fast["step_s"],
        "ratio": base["step_s"] / fast["step_s"],
        "baseline_epoch_s": steps_per_epoch * base["step_s"],
        "reslab_epoch_s": steps_per_epoch * fast["step_s"],
        "train_gflop_per_step": flops / 1e9,
        "reslab_tflops": flops / fast["step_s"] / 1e12,
        "ceiling_fraction": flops / fast["step_s"] / 1e9 / ceiling,
        "baseline_ceiling_fraction": flops / base["step_s"] / 1e9 / ceiling,
        "baseline_peak_mib": base["peak_mib"],
        "reslab_peak_mib": fast["peak_mib"],
    }


def bench_synthetic(name, batch_size, compiled: bool, args, device, ceiling) -> dict:
    """An ImageNet-size network at 224x224 on one synthetic batch, through the engine's step."""
    torch.manual_seed(0)
    config = build_config(
        {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9},
        {
            "model": name,
            "batch_size": batch_size,
            "precision": args.precision,
            "compile": compiled,
            "channels_last": True,
            "device": device.type,
            "max_steps": 10**6,
        },
    )
    x = torch.randn(batch_size, 3, 224, 224, device=device)
    y = torch.randint(0, 1000, (batch_size,), device=device)
    imagenet = {"classes": list(range(1000)), "in_channels": 3}
    flops = train_flops(build_model(config, imagenet).to(device), x)
    s = assemble(config, build_model(config, imagenet), device, steps_per_epoch=1000)
    x = x.contiguous(memory_format=torch.channels_last)
    with PeakMemory(device) as peak:
        compile_start = time.perf_counter()
        for _ in range(args.warmup):
            train_step(s, x, y)
        sync(device)
        warmup_s = time.perf_counter() - compile_start
        start = time.perf_counter()
        for _ in range(args.steps):
            train_step(s, x, y)
        sync(device)
        seconds = (time.perf_counter() - start) / args.steps
    return {
        "model": name,
        "input": 224,
        "batch_size": batch_size,
        "compiled": compiled,
        "warmup_s": warmup_s,
        "reslab_images_per_s": batch_size / seconds,
        "train_gflop_per_step": flops / 1e9,
        "reslab_tflops": flops / seconds / 1e12,
        "ceiling_fraction": flops / seconds / 1e9 / ceiling,
        "reslab_peak_mib": peak.mib,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--models", nargs="*", default=["resnet20"], help="CIFAR models; none for --imagenet only"
    )
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[128])
    p.add_argument("--data", default="cifar10-sample", help="a data set name, or folder:DIR")
    p.add_argument("--data-dir")
    p.add_argument("--steps", type=int, default=10, help="timed steps per figure")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="the baseline DataLoader's worker processes (default: one per core)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile reslab's model")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="reslab's autocast precision (the baseline stays fp32, as the tutorials)",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--imagenet",
        nargs="*",
        default=[],
        metavar="MODEL",
        help="also time these ImageNet-size models at 224x224 on synthetic data",
    )
    p.add_argument("--imagenet-batch", type=int, default=32)
    p.add_argument("--json")
    args = p.parse_args()
    device = resolve_device(args.device)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    ceiling = matmul_gflops(device, dtype=dtype)
    info = machine()
    print(
        f"{info}\nceiling: {args.precision} matrix product {ceiling / 1e3:.2f} TFLOP/s on {device}"
    )
    print(f"reslab: channels-last, {args.precision}{', compiled' if args.compile else ''}")
    rows = []
    if args.models:
        data = load_dataset(args.data, args.data_dir)
        print(
            f"{'model':<16}{'batch':>6}{'baseline img/s':>15}{'reslab img/s':>13}{'ratio':>7}"
            f"{'epoch s base/reslab':>20}{'TFLOP/s':>9}{'of ceil.':>9}{'peak MiB b/r':>14}"
        )
    for name, bs in itertools.product(args.models, args.batch_sizes):
        r = bench_one(name, bs, data, args, device, ceiling)
        rows.append(r)
        epochs = f"{r['baseline_epoch_s']:.1f}/{r['reslab_epoch_s']:.1f}"
        peaks = f"{_mib(r['baseline_peak_mib'])}/{_mib(r['reslab_peak_mib'])}"
        print(
            f"{name:<16}{bs:>6}{r['baseline_images_per_s']:>15.0f}{r['reslab_images_per_s']:>13.0f}"
            f"{r['ratio']:>6.2f}x{epochs:>20}{r['reslab_tflops']:>9.2f}"
            f"{100 * r['ceiling_fraction']:>8.0f}%{peaks:>14}"
        )
    for name in args.models:
        best = max((r for r in rows if r["model"] == name), key=lambda r: r["reslab_images_per_s"])
        rate = best["reslab_images_per_s"]
        print(f"best batch for {name}: {best['batch_size']} ({rate:.0f} img/s)")
    for name, compiled in itertools.product(args.imagenet, (False, True)[: 1 + args.compile]):
        r = bench_synthetic(name, args.imagenet_batch, compiled, args, device, ceiling)
        rows.append(r)
        label = f"{name} @224{' compiled' if compiled else ''}"
        print(
            f"{label:<26}{args.imagenet_batch:>5}{r['reslab_images_per_s']:>10.0f} img/s"
            f"{r['reslab_tflops']:>9.2f} TFLOP/s{100 * r['ceiling_fraction']:>5.0f}% of ceiling"
            f"  peak {_mib(r['reslab_peak_mib'])} MiB  warm-up {r['warmup_s']:.1f} s"
        )
    write_json(
        args.json,
        {
            "machine": info,
            "ceiling_gflops": ceiling,
            "ceiling_precision": args.precision,
            "compile": args.compile,
            "precision": args.precision,
            "steps": args.steps,
            "warmup": args.warmup,
            "workers": args.workers,
            "results": rows,
        },
    )


def _mib(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.0f}"


if __name__ == "__main__":
    main()
