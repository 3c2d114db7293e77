"""Cut the shipped CIFAR-10 sample from the JPEG image-folder tarball.

    python scripts/make_cifar10_sample.py cifar10-jpeg.tar.gz --train 400 --test 100 --seed 0

Takes a seeded, class-balanced selection of the original JPEG files (bytes kept as they are, no
re-encoding) and packs them into src/reslab/data/sample/cifar10-sample.safetensors: per split a
uint8 tensor of concatenated JPEG bytes, int64 offsets into it and int64 labels, with the class
names in the header.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tarfile
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "src" / "reslab" / "data" / "sample"


def collect(tar_path: Path) -> dict[str, dict[str, dict[str, bytes]]]:
    """split -> class -> file name -> JPEG bytes."""
    tree: dict = {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 3 and parts[-3] in ("train", "test"):
                data = tar.extractfile(member).read()
                tree.setdefault(parts[-3], {}).setdefault(parts[-2], {})[parts[-1]] = data
    return tree


def pack(files: list[tuple[int, bytes]]) -> dict[str, torch.Tensor]:
    offsets = [0]
    for _, data in files:
        offsets.append(offsets[-1] + len(data))
    blob = torch.frombuffer(bytearray(b"".join(d for _, d in files)), dtype=torch.uint8)
    return {
        "jpeg": blob,
        "offsets": torch.tensor(offsets),
        "labels": torch.tensor([c for c, _ in files]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tarball", type=Path)
    parser.add_argument("--train", type=int, default=400, help="training images per class")
    parser.add_argument("--test", type=int, default=100, help="test images per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tree = collect(args.tarball)
    classes = sorted(tree["train"])
    rng = random.Random(args.seed)
    tensors = {}
    for split, per_class in (("train", args.train), ("test", args.test)):
        chosen = []
        for label, name in enumerate(classes):
            names = sorted(tree[split][name])
            chosen += [(label, tree[split][name][n]) for n in sorted(rng.sample(names, per_class))]
        tensors.update({f"{split}_{k}": v for k, v in pack(chosen).items()})
    sha = hashlib.sha256(args.tarball.read_bytes()).hexdigest()
    meta = {"classes": json.dumps(classes), "source_sha256": sha, "seed": str(args.seed)}
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT / "cifar10-sample.safetensors"), metadata=meta)
    size = (OUT / "cifar10-sample.safetensors").stat().st_size
    print(
        f"wrote {OUT / 'cifar10-sample.safetensors'}: {size / 1e6:.2f} MB, "
        f"{args.train * 10} train + {args.test * 10} test images, source sha256 {sha}"
    )


if __name__ == "__main__":
    main()
