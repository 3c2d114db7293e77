"""Cut the shipped CIFAR-10 sample from the JPEG image-folder tarball.

    python scripts/make_cifar10_sample.py /work/shared/data/cifar10-jpeg.tar.gz \
        --train 400 --test 100 --seed 0

Takes a seeded, class-balanced selection of the original JPEG files (their bytes as they are, no
re-encoding) and packs them into src/reslab/data/sample/cifar10-sample.safetensors: per split a
uint8 tensor of concatenated JPEG bytes, int64 offsets into it and int64 labels, with the class
names, seed and the tarball's sha256 in the header. Writes sample/README.md to match. The same
tarball, counts and seed give the same file, byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tarfile
from pathlib import Path

from safetensors.torch import save

from reslab.data.sets import channel_stats
from reslab.data.shipped import SAMPLE_FILE, SPLITS, load_sample, pack_jpegs
from reslab.io import atomic_write, atomic_write_text

README = """\
# The shipped CIFAR-10 sample

`cifar10-sample.safetensors` holds {n_train:,} training and {n_test:,} test images of CIFAR-10
(Krizhevsky, 2009), {train} and {test} per class, 10 classes: the original JPEG files, bytes
unchanged, of a class-balanced random selection (seed {seed}) from `cifar10-jpeg.tar.gz`, a JPEG
copy of CIFAR-10 (baseline, quality about 75, re-encoded from the original pixels by a public
mirror), whose sha256 is

    {sha}

Size: {size_mb:.2f} MB; the sample file's own sha256 is

    {sample_sha}

Layout: per split (`train`, `test`) a uint8 tensor `<split>_jpeg` of concatenated JPEG files,
int64 `<split>_offsets` (N + 1 byte offsets into it) and int64 `<split>_labels`; the header
holds the class names (in label order), the seed and the tarball's sha256.
`reslab.data.load_dataset("cifar10-sample")` decodes it (batched `decode_jpeg`) and caches the
result like any other source.

Training-split channel means {mean}, stds {std}
(full CIFAR-10: 0.491, 0.482, 0.447 and 0.247, 0.243, 0.261).

Made with (same tarball, counts and seed: the same file, byte for byte):

    python scripts/make_cifar10_sample.py cifar10-jpeg.tar.gz \\
        --train {train} --test {test} --seed {seed}
"""


def collect(tar_path: Path) -> dict[str, dict[str, dict[str, bytes]]]:
    """split -> class -> file name -> JPEG bytes, from .../<split>/<class>/<file>.jpg members."""
    tree: dict = {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 3 and parts[-3] in SPLITS:
                data = tar.extractfile(member).read()
                tree.setdefault(parts[-3], {}).setdefault(parts[-2], {})[parts[-1]] = data
    return tree


def select(tree: dict, per_split: dict[str, int], seed: int) -> tuple[list[str], dict]:
    """Classes (sorted) and, per split, (label, bytes) of `per_split[split]` files per class,
    drawn without replacement by one seeded generator, kept in file-name order."""
    classes = sorted(tree["train"])
    rng = random.Random(seed)
    chosen: dict[str, list[tuple[int, bytes]]] = {}
    for split in SPLITS:
        chosen[split] = []
        for label, name in enumerate(classes):
            files = tree[split][name]
            picked = sorted(rng.sample(sorted(files), per_split[split]))
            chosen[split] += [(label, files[f]) for f in picked]
    return classes, chosen


def canonical(blob: bytes) -> bytes:
    """The safetensors file with its JSON header's keys sorted: safetensors writes them in
    hash-map order, which changes from run to run; sorted, equal inputs give equal bytes."""
    n = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + n]), sort_keys=True, separators=(",", ":"))
    header = header.encode().ljust(n)  # the format allows trailing spaces in the header
    if len(header) != n:
        raise SystemExit("unexpected safetensors header; cannot make it canonical")
    return blob[:8] + header + blob[8 + n :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tarball", type=Path, help="cifar10-jpeg.tar.gz")
    parser.add_argument("--train", type=int, default=400, help="training images per class")
    parser.add_argument("--test", type=int, default=100, help="test images per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=SAMPLE_FILE, help="the .safetensors to write")
    args = parser.parse_args()
    sha = hashlib.sha256(args.tarball.read_bytes()).hexdigest()
    classes, chosen = select(collect(args.tarball), {"train": args.train, "test": args.test},
                             args.seed)  # fmt: skip
    tensors = {f"{s}_{k}": v for s in SPLITS for k, v in pack_jpegs(chosen[s]).items()}
    meta = {"classes": json.dumps(classes), "source_sha256": sha, "seed": str(args.seed)}
    atomic_write(args.out, lambda f: f.write(canonical(save(tensors, metadata=meta))))
    args.out.chmod(0o644)  # package data: readable by everyone
    size = args.out.stat().st_size
    counts = dict(n_train=args.train * len(classes), n_test=args.test * len(classes))
    mean, std = channel_stats(load_sample(skip_corrupt=False, path=args.out)[0].images)
    stats = {k: ", ".join(f"{v:.3f}" for v in vs) for k, vs in (("mean", mean), ("std", std))}
    atomic_write_text(args.out.parent / "README.md", README.format(
        train=args.train, test=args.test, seed=args.seed, sha=sha, size_mb=size / 1e6,
        sample_sha=hashlib.sha256(args.out.read_bytes()).hexdigest(),
        **counts, **stats,
    ))  # fmt: skip
    (args.out.parent / "README.md").chmod(0o644)
    print(f"wrote {args.out}: {size / 1e6:.2f} MB, {counts['n_train']} train + "
          f"{counts['n_test']} test images, source sha256 {sha}")  # fmt: skip


if __name__ == "__main__":
    main()
