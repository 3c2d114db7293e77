"""Turn a finished run into shipped pretrained weights: MODEL.TAG.safetensors and its manifest
in src/reslab/models/weights/ (or --into DIR), in the one manifest schema
(reslab.models.pretrained).

    python scripts/ship_weights.py runs/resnet20 --tag onecycle80_full_c10jpeg \\
        --recipe cifar-onecycle --commit 42b469b --default \\
        --dataset "CIFAR-10, the shared JPEG copy (quality ~75), image-folder tree" \\
        --device "2-core x86-64 CPU (AMD EPYC, AVX512-BF16), no GPU, fp32"

With --default, the model's earlier default in the same folder stops being one (its manifest's
"default" becomes false; its weights file and checksum are untouched).

Nothing of the trainer's machine ships: an image-folder data set is named by its folder's name
(folder:cifar10), and the data itself by checksum (`data_digests`: of the decoded images, which
runs record; for a run from before they did, --data FOLDER names the data it trained on, and
its checksums are computed), so that `reslab eval --pretrained NAME --dataset folder:DIR` can
tell whether DIR holds that data.

The run's own files are the source of every figure: summary.json (test accuracy, read once at
the end of training), metrics.jsonl (the final epoch's validation accuracy), config.toml.
A run whose process was stopped for a while (SIGSTOP, Ctrl-Z: its recorded training time counts
the stop) ships with --stopped-s SECONDS, taken out of its training time and recorded as such.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from reslab.errors import UserError
from reslab.models import pretrained
from reslab.report.runs import load_run
from reslab.run.checkpoint import weights_header
from reslab.run.directory import RunDir


def portable(meta: dict) -> dict:
    """A weights header's {"config", "data"} as shipped: an image folder named by its folder's
    name, not by its path on the trainer's machine; no data_dir."""
    config, data = dict(meta["config"]), dict(meta["data"])
    dataset = config["dataset"]
    if dataset.startswith("folder:"):
        dataset = f"folder:{Path(dataset.removeprefix('folder:')).name}"
    config.update(dataset=dataset, data_dir="")
    data["dataset"] = dataset
    return {**meta, "config": config, "data": data}


@functools.cache
def _load(data_folder: Path):
    from reslab.data import load_dataset

    return load_dataset(f"folder:{data_folder}")


def data_digests(meta: dict, data_folder: Path | None) -> dict:
    """The checksums of the data the run trained on: recorded in its weights, or computed from
    --data (a run from before runs recorded them)."""
    if meta["data"].get("digests"):
        return meta["data"]["digests"]
    if data_folder is None:
        raise UserError(
            "the run's weights record no data checksums (a run from before they did); pass "
            "--data FOLDER, the image folder it trained on"
        )
    return _load(data_folder).digests


def test_images(summary: dict, data_folder: Path | None) -> int | None:
    """How many images the run's test accuracy counts: recorded in its summary, or counted in
    --data (a run from before summaries recorded it); None when neither says."""
    if "test_images" in summary:
        return summary["test_images"]
    if data_folder is None:
        return None
    return len(_load(data_folder).test)


def manifest_for(run: RunDir, args: argparse.Namespace) -> dict:
    record = load_run(run.path)
    summary, last = record.summary, record.last()
    raw = json.loads(weights_header(run.weights)["meta"])
    meta = portable(raw)
    config, data = (
        {**record.config, "dataset": meta["config"]["dataset"], "data_dir": ""},
        meta["data"],
    )
    stopped = args.stopped_s or 0.0
    if not 0 <= stopped < summary["wall_time_s"]:
        raise UserError(
            f"--stopped-s {stopped:g} is not between 0 and the run's recorded training time "
            f"({summary['wall_time_s']:g} s)"
        )
    n_val = config["val_split"]
    n_train = (
        "all of it, no validation split"
        if n_val == 0
        else f"all but {n_val} held out for validation"
    )
    return {
        "schema": pretrained.SCHEMA,
        "model": config["model"],
        "tag": args.tag,
        "default": args.default,
        "sha256": None,  # filled in once the file is written
        "classes": data["classes"],
        "mean": data["mean"],
        "std": data["std"],
        "in_channels": data["in_channels"],
        "image_size": data["image_size"],
        "dataset": args.dataset,
        "split": f"trained on the training split ({n_train}); test split read once, at the end",
        "test_acc": summary["test_acc"],
        "val_acc": last.get("val_acc"),
        "recipe": args.recipe,
        "config": config,
        "data_digests": data_digests(raw, args.data),
        "epochs": summary["epochs"],
        "wall_time_s": round(summary["wall_time_s"] - stopped, 3),
        "device": args.device,
        "torch": summary["torch"],
        "reslab_commit": args.commit,
        "date": args.date or datetime.date.today().isoformat(),
        "test_images": test_images(summary, args.data),
        "stopped_s": stopped,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a finished run directory")
    p.add_argument("--tag", required=True)
    p.add_argument("--dataset", required=True, help="which copy of which data, in words")
    p.add_argument("--device", required=True, help="the hardware it trained on, in words")
    p.add_argument("--commit", required=True, help="reslab commit that trained it")
    p.add_argument("--recipe", required=True, help="the recipe's name")
    p.add_argument("--date", help="YYYY-MM-DD (default: today)")
    p.add_argument("--default", action="store_true", help="the tag pretrained=True picks")
    p.add_argument(
        "--data",
        type=Path,
        help="the image folder the run trained on, where its weights do not record the "
        "data's checksums (or its summary the number of test images)",
    )
    p.add_argument(
        "--stopped-s",
        type=float,
        metavar="SECONDS",
        help="seconds the run's process was stopped (SIGSTOP, Ctrl-Z) inside its recorded "
        "training time: taken out of it, and recorded",
    )
    p.add_argument(
        "--into", type=Path, default=pretrained.WEIGHTS_DIR, help="folder (default: the package's)"
    )
    args = p.parse_args(argv)
    try:  # bad input exits 2 in one line, as the CLI's errors do
        ship(args)
    except UserError as e:
        print(f"ship_weights: {e}", file=sys.stderr)
        return 2
    return 0


def ship(args: argparse.Namespace) -> None:
    run = RunDir(args.run)
    if not run.summary.is_file():
        raise UserError(f"{run.path} is not a finished run (no summary.json)")
    if not run.weights.is_file():
        raise UserError(f"{run.path} has no final weights ({run.weights.name})")
    if args.date is not None:
        try:
            datetime.date.fromisoformat(args.date)
        except ValueError:
            raise UserError(f"--date {args.date!r} is not YYYY-MM-DD") from None
    manifest = manifest_for(run, args)
    name = f"{manifest['model']}.{args.tag}"
    target = args.into / f"{name}.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    # The run's own header (config, data: classes and normalization) stays with the weights, so
    # the file copied anywhere still loads as what it is (`reslab eval FILE`, `weights=FILE`).
    header = weights_header(run.weights)
    header = {**header, "meta": json.dumps(portable(json.loads(header["meta"]))), "name": name}
    save_file(load_file(str(run.weights)), str(target), metadata=header)
    target.chmod(0o644)  # safetensors writes 0600; a shipped file is for every user
    manifest["sha256"] = pretrained.sha256(target)
    (target.with_suffix(".json")).write_text(json.dumps(manifest, indent=2) + "\n")
    if args.default:  # after the new manifest: a failure in between leaves two defaults, which
        # loading refuses in one line, never a weights file without a manifest
        for other in sorted(args.into.glob(f"{manifest['model']}.*.json")):
            earlier = json.loads(other.read_text())
            if other.stem != name and earlier.get("default"):
                earlier["default"] = False
                other.write_text(json.dumps(earlier, indent=2) + "\n")
                print(f"{other.stem} is no longer the default")
    print(f"wrote {target} and its manifest (test accuracy {100 * manifest['test_acc']:.2f}%)")


if __name__ == "__main__":
    sys.exit(main())
