"""Accuracy in a fixed wall-clock budget, and time to a target accuracy, on real CIFAR-10.

    python benchmarks/bench_time_budget.py --data folder:/tmp/cifar10 --budget-s 600

Measures the training throughput of the chosen network for a few steps, sizes a one-cycle run to
fill the budget (evaluation time included), trains it with `reslab.train`, and reports the test
accuracy, the wall time, and the first epoch whose validation accuracy reached --target.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402

from reslab.data import load_dataset  # noqa: E402
from reslab.train import build_config, fit  # noqa: E402
from reslab.train.stop import StopRequested  # noqa: E402


def measure_rate(config, steps: int = 15) -> float:
    """Images per second of the real training loop, timed over `steps` steps after two."""
    seen = {}

    def stop(step):
        if step == 2:
            seen["t0"] = time.perf_counter()
        if step == steps + 2:
            seen["t1"] = time.perf_counter()
            return True
        return False

    probe = build_config(config.to_dict(), {"max_steps": steps + 3, "epochs": 1, "val_split": 0})
    out = Path("runs/bench-probe")
    with contextlib.suppress(StopRequested):  # the expected way out after the timed steps
        fit(probe, out, force=True, quiet=True, should_stop=stop)
    return steps * config.batch_size / (seen["t1"] - seen["t0"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="cifar10-sample")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--budget-s", type=float, default=600.0)
    p.add_argument("--target", type=float, default=0.80, help="validation accuracy to time")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.4)
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="autocast precision (bf16 pays on CUDA and on CPUs with AVX512-BF16 or AMX)",
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the model (timed from the start)"
    )
    p.add_argument(
        "--eval-share",
        type=float,
        default=0.12,
        help="fraction of the budget kept for evaluation and start-up",
    )
    p.add_argument("--out", default="runs/time-budget")
    p.add_argument("--json")
    args = p.parse_args()
    data = load_dataset(args.data)
    base = dict(
        model=args.model,
        dataset=args.data,
        optimizer="nesterov",
        lr=args.lr,
        momentum=0.9,
        weight_decay=5e-4,
        no_decay_norm_bias=True,
        batch_size=args.batch_size,
        schedule="onecycle",
        label_smoothing=0.1,
        channels_last=True,
        precision=args.precision,
        compile=args.compile,
        val_split=2000,
        epochs=1,
    )
    rate = measure_rate(build_config(base))
    train_images = len(data.train) - 2000
    epochs = max(1, int(args.budget_s * (1 - args.eval_share) * rate / train_images))
    config = build_config(base, {"epochs": epochs})
    print(
        f"{machine()}\n{args.model}: {rate:.0f} images/s -> {epochs} epochs in "
        f"{args.budget_s:.0f} s"
    )
    start = time.perf_counter()
    result = fit(config, args.out, force=True)
    wall = time.perf_counter() - start
    rows = [json.loads(x) for x in (Path(args.out) / "metrics.jsonl").read_text().splitlines()]
    elapsed, reached = 0.0, None
    for r in rows:
        elapsed += r["epoch_time_s"]
        if reached is None and r["val_acc"] is not None and r["val_acc"] >= args.target:
            reached = {"epoch": r["epoch"], "train_time_s": round(elapsed, 1)}
    out = {
        "machine": machine(),
        "model": args.model,
        "precision": args.precision,
        "compile": args.compile,
        "batch_size": args.batch_size,
        "measured_images_per_s": round(rate),
        "data": data.name,
        "epochs": epochs,
        "budget_s": args.budget_s,
        "wall_s": round(wall, 1),
        "train_time_s": round(result.summary["wall_time_s"], 1),
        "test_acc": result.summary["test_acc"],
        "target": args.target,
        "target_reached": reached,
        "torch": torch.__version__,
    }
    print(json.dumps(out, indent=2))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
