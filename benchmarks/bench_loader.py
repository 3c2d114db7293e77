"""Loader throughput: reslab's DeviceLoader against torchvision's DataLoader pipeline.

    python benchmarks/bench_loader.py [--data cifar10-sample|folder:PATH] [--workers 2]

Both feed the same decoded CIFAR-10 uint8 arrays through RandomCrop(32, padding=4),
RandomHorizontalFlip, ToTensor and Normalize, one epoch of batches of 128, side by side in one
process; the figure is the median over --repeats epochs.
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

from reslab.data import DeviceLoader, load_dataset  # noqa: E402


class PILDataset(Dataset):
    """What torchvision.datasets.CIFAR10 does per sample: array -> PIL image -> transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).numpy()  # NHWC, as CIFAR10.data
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="cifar10-sample")
    p.add_argument("--data-dir")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json")
    args = p.parse_args()
    data = load_dataset(args.data, args.data_dir)
    device = torch.device(args.device)
    n = len(data.train)

    ours = DeviceLoader(data.train, batch_size=args.batch_size, mean=data.mean, std=data.std,
                        train=True, device=device)
    epoch = iter(range(10**9))

    def run_ours():
        for x, _ in ours.iter_epoch(next(epoch)):
            pass
        x.sum().item()  # host-device sync: make sure the last batch is really done

    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(data.mean, data.std)])
    baseline = DataLoader(PILDataset(data.train.images, data.train.labels, tf),
                          batch_size=args.batch_size, shuffle=True, drop_last=True,
                          num_workers=args.workers, persistent_workers=args.workers > 0,
                          pin_memory=device.type == "cuda")

    def run_baseline():
        for x, _ in baseline:
            x.to(device, non_blocking=True)

    run_ours(), run_baseline()  # warm-up: worker start-up, allocator
    t_ours = median_time(run_ours, args.repeats, device)
    t_base = median_time(run_baseline, args.repeats, device)
    result = {"machine": machine(), "data": data.name, "images": n,
              "batch_size": args.batch_size, "workers": args.workers,
              "reslab_images_per_s": len(ours) * args.batch_size / t_ours,
              "dataloader_images_per_s": len(baseline) * args.batch_size / t_base}
    result["ratio"] = result["reslab_images_per_s"] / result["dataloader_images_per_s"]
    print(f"{result['machine']}")
    print(f"data {data.name}: {n} training images, batch {args.batch_size}, device {device}")
    print(f"reslab DeviceLoader           {result['reslab_images_per_s']:>12,.0f} images/s")
    print(f"DataLoader ({args.workers} workers, PIL)   {result['dataloader_images_per_s']:>12,.0f} images/s")
    print(f"ratio                         {result['ratio']:>12.1f}x")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
