"""Loader throughput: reslab's DeviceLoader against torchvision's DataLoader pipeline.

    python benchmarks/bench_loader.py [--data cifar10-sample|folder:PATH] [--workers 2] [--json OUT]

Both produce one epoch of augmented training batches (batch 128) from the same decoded uint8
arrays. The baseline is the standard recipe: a Dataset that turns each image into a PIL image,
as torchvision.datasets.CIFAR10 does, then RandomCrop(size, padding=4), RandomHorizontalFlip,
ToTensor, Normalize, in a DataLoader with --workers processes (persistent, so worker start-up is
not counted). reslab's loader does the same work as batched tensor ops on --device. Side by
side in one process; each figure is the median over --repeats epochs after one warm-up epoch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, median_time, write_json  # noqa: E402

from reslab.data import DeviceLoader, ImageSet, load_dataset  # noqa: E402


class PILDataset(Dataset):
    """What torchvision.datasets.CIFAR10 does per sample: array -> PIL image -> transforms."""

    def __init__(self, data: ImageSet, transform):
        self.images = data.images.permute(0, 2, 3, 1).numpy()  # NHWC, as CIFAR10.data
        self.labels = data.labels.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = self.images[i]
        image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        return self.transform(image), self.labels[i]


def baseline_loader(
    data: ImageSet, mean, std, batch_size: int, workers: int, device: torch.device
) -> DataLoader:
    """The tutorial pipeline's DataLoader over `data`."""
    tf = transforms.Compose(
        [
            transforms.RandomCrop(tuple(data.images.shape[2:]), padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    return DataLoader(
        PILDataset(data, tf),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )


def epoch_runner(loader, device: torch.device, reslab: bool):
    """One epoch; batches end on `device` (the baseline's are copied there, as in training)."""
    epochs = iter(range(10**9))

    def run() -> None:
        batches = loader.iter_epoch(next(epochs)) if reslab else loader
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    return run


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="cifar10-sample", help="cifar10-sample or folder:PATH")
    p.add_argument("--data-dir", help="where the decoded cache lives (default: $RESLAB_DATA)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="torch threads of this process (default: torch's)")
    p.add_argument("--json", help="also write the results here")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:  # DataLoader workers use one thread each whatever this says
        torch.set_num_threads(args.threads)
    data = load_dataset(args.data, args.data_dir)
    device = torch.device(args.device)
    ours = DeviceLoader(data.train, batch_size=args.batch_size, mean=data.mean, std=data.std,
                        train=True, device=device)  # fmt: skip
    theirs = baseline_loader(data.train, data.mean, data.std, args.batch_size, args.workers, device)
    timings = {}
    for name, loader, is_ours in (("reslab", ours, True), ("dataloader", theirs, False)):
        run = epoch_runner(loader, device, is_ours)
        run()  # warm-up: worker start-up, allocator, caches
        seconds = median_time(run, args.repeats, device)
        timings[name] = len(loader) * args.batch_size / seconds
    result = {
        "machine": machine(),
        "data": data.name,
        "train_images": len(data.train),
        "batch_size": args.batch_size,
        "workers": args.workers,
        "repeats": args.repeats,
        "reslab_images_per_s": timings["reslab"],
        "dataloader_images_per_s": timings["dataloader"],
        "ratio": timings["reslab"] / timings["dataloader"],
    }
    m = result["machine"]
    print(
        f"{m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']} ({m['torch_threads']} "
        f"threads), device {m['device']}"
    )
    print(f"data {data.name}: {len(data.train):,} training images, batch {args.batch_size}")
    print(f"reslab DeviceLoader ({device.type}):      {timings['reslab']:>10,.0f} images/s")
    print(f"DataLoader ({args.workers} workers, PIL):    {timings['dataloader']:>10,.0f} images/s")
    print(f"ratio:                          {result['ratio']:>10.1f}x")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
