"""Training throughput: reslab's fast path against the usual PyTorch tutorial pipeline.

    python benchmarks/bench_train.py --models resnet20 resnet56 resnet18_cifar --batch-sizes 128

Baseline: uint8 arrays -> PIL -> RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize in
a DataLoader with worker processes, an eager fp32 model, torch.optim.SGD. reslab: the same model,
batch and data through the device-resident loader, channels-last, with --precision bf16 autocast
(on CUDA, and on CPUs with bfloat16 instructions such as AVX512-BF16 or AMX) and --compile
torch.compile. Both run in this one process, side by side; each figure is the median over
--repeats timed runs of --steps steps after a warm-up. Peak memory is given per pipeline: on CUDA
the allocator's peak, on the CPU the peak resident set of the process and its DataLoader workers.
With several --batch-sizes, the best batch size per model is printed at the end. Achieved
GFLOP/s (FLOPs of forward and backward counted by torch.utils.flop_counter) is given as a
fraction of a 2048^3 float32 matrix product's GFLOP/s measured in the same run: the machine's
practical ceiling.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from bench_loader import baseline_loader  # noqa: E402
from common import PeakMemory, machine, matmul_gflops, median_time, write_json  # noqa: E402

from reslab.data import DeviceLoader, load_dataset  # noqa: E402
from reslab.models import create_model  # noqa: E402


def train_flops(model, batch: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        model(batch).sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def make_step(model, optimizer, autocast=contextlib.nullcontext):
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        with autocast():
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def time_pipeline(batches, step, steps: int, repeats: int, device) -> tuple[float, float | None]:
    """Median seconds per step iterating `batches` (an endless iterator of (x, y)), and the
    peak memory in MiB over warm-up and timed runs."""
    with PeakMemory(device) as peak:
        for _ in range(3):  # warm-up (and compilation)
            step(*next(batches))

        def run():
            for _ in range(steps):
                loss = step(*next(batches))
            loss.item()  # host-device sync once per timed run

        seconds = median_time(run, repeats, device) / steps
    return seconds, peak.mib


def reslab_step(model, args, device):
    """reslab's fast path for `model`: channels-last, optional compile and bf16 autocast."""
    model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if args.compile else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    bf16 = args.precision == "bf16"
    return make_step(
        step_model, opt, lambda: torch.autocast(device.type, torch.bfloat16, enabled=bf16)
    )


def endless_device_batches(loader: DeviceLoader):
    for epoch in itertools.count():
        yield from loader.iter_epoch(epoch)


def endless_baseline_batches(loader: DataLoader, device):
    while True:
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def bench_one(name, batch_size, data, args, device, ceiling) -> dict:
    torch.manual_seed(0)
    results = {"model": name, "batch_size": batch_size}
    model = create_model(name, num_classes=data.num_classes).to(device)
    flops = train_flops(model, torch.randn(batch_size, 3, 32, 32, device=device))
    # Baseline: the tutorial pipeline, eager fp32 with the default memory format.
    loader = baseline_loader(data.train, data.mean, data.std, batch_size, args.workers, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batches = endless_baseline_batches(loader, device)
    base, base_peak = time_pipeline(
        batches, make_step(model, opt), args.steps, args.repeats, device
    )
    del batches, loader
    # reslab: data on the device as uint8, augmentation as batched ops, the fast step.
    dl = DeviceLoader(
        data.train,
        batch_size=batch_size,
        mean=data.mean,
        std=data.std,
        train=True,
        device=device,
        channels_last=True,
    )
    fast, fast_peak = time_pipeline(
        endless_device_batches(dl), reslab_step(model, args, device), args.steps, args.repeats,
        device,
    )  # fmt: skip
    results.update(
        baseline_images_per_s=batch_size / base,
        reslab_images_per_s=batch_size / fast,
        ratio=base / fast,
        train_gflop_per_step=flops / 1e9,
        reslab_gflops=flops / fast / 1e9,
        ceiling_fraction=flops / fast / 1e9 / ceiling,
        baseline_ceiling_fraction=flops / base / 1e9 / ceiling,
        baseline_peak_mib=base_peak,
        reslab_peak_mib=fast_peak,
    )
    return results


def bench_synthetic(name, batch_size, args, device, ceiling) -> dict:
    """ImageNet-size networks at 224x224 on synthetic data: reslab's step only (channels-last,
    optional compile), images/s and the fraction of the ceiling. There is no data pipeline to
    compare here, so no baseline ratio."""
    torch.manual_seed(0)
    model = create_model(name).to(device)
    x = torch.randn(batch_size, 3, 224, 224, device=device)
    y = torch.randint(0, 1000, (batch_size,), device=device)
    flops = train_flops(model, x)
    x = x.contiguous(memory_format=torch.channels_last)
    seconds, peak = time_pipeline(
        itertools.repeat((x, y)), reslab_step(model, args, device), args.steps, args.repeats,
        device,
    )  # fmt: skip
    return {
        "model": name,
        "batch_size": batch_size,
        "input": 224,
        "reslab_images_per_s": batch_size / seconds,
        "train_gflop_per_step": flops / 1e9,
        "reslab_gflops": flops / seconds / 1e9,
        "ceiling_fraction": flops / seconds / 1e9 / ceiling,
        "reslab_peak_mib": peak,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--models", nargs="*", default=["resnet20"], help="CIFAR models; none for --imagenet only"
    )
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[128])
    p.add_argument("--data", default="cifar10-sample")
    p.add_argument("--data-dir")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="torch.compile reslab's model")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="reslab's autocast precision (the baseline stays fp32, as the tutorials)",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
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
    device = torch.device(args.device)
    data = load_dataset(args.data, args.data_dir)
    ceiling = matmul_gflops(device)
    info = machine()
    print(f"{info}\nceiling: 2048^3 float32 matmul {ceiling:.1f} GFLOP/s on {device}")
    print(f"reslab: channels-last, {args.precision}{', compiled' if args.compile else ''}")
    print(
        f"{'model':<16}{'batch':>6}{'baseline img/s':>16}{'reslab img/s':>14}{'ratio':>7}"
        f"{'GFLOP/s':>9}{'of ceiling':>11}{'peak MiB base/reslab':>22}"
    )
    rows = []
    for name, bs in itertools.product(args.models, args.batch_sizes):
        r = bench_one(name, bs, data, args, device, ceiling)
        rows.append(r)
        peaks = f"{_mib(r['baseline_peak_mib'])}/{_mib(r['reslab_peak_mib'])}"
        print(
            f"{name:<16}{bs:>6}{r['baseline_images_per_s']:>16.0f}{r['reslab_images_per_s']:>14.0f}"
            f"{r['ratio']:>6.2f}x{r['reslab_gflops']:>9.1f}{100 * r['ceiling_fraction']:>10.0f}%"
            f"{peaks:>22}"
        )
    for name in args.models:
        best = max((r for r in rows if r["model"] == name), key=lambda r: r["reslab_images_per_s"])
        rate = best["reslab_images_per_s"]
        print(f"best batch for {name}: {best['batch_size']} ({rate:.0f} img/s)")
    for name in args.imagenet:
        r = bench_synthetic(name, args.imagenet_batch, args, device, ceiling)
        rows.append(r)
        print(
            f"{name + ' @224':<16}{args.imagenet_batch:>6}{'-':>16}"
            f"{r['reslab_images_per_s']:>14.1f}{'-':>7}{r['reslab_gflops']:>9.1f}"
            f"{100 * r['ceiling_fraction']:>10.0f}%{_mib(r['reslab_peak_mib']):>22}"
        )
    write_json(
        args.json,
        {
            "machine": info,
            "ceiling_gflops": ceiling,
            "compile": args.compile,
            "precision": args.precision,
            "steps": args.steps,
            "repeats": args.repeats,
            "results": rows,
        },
    )


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
