"""Accuracy in a fixed wall-clock budget: `reslab train --time-budget` against the tutorial way.

    python benchmarks/bench_time_budget.py --data folder:/path/to/cifar10 --budgets 10m
    python benchmarks/bench_time_budget.py --data folder:DIR --budgets 2m 5m 10m 20m \\
        --baseline-budgets 10m --cold 2m --plot docs/figures/time-budget.png --json out.json

reslab: the shipped command, run as a user runs it (`python -m reslab train --time-budget B
--recipe R --dataset D ...` in a subprocess), its wall time taken from just before the process
starts to just after it exits, so start-up, data loading and the final evaluation count. The
overshoot is that wall time against the budget. Each budget's run uses the data cache warmed by
an earlier run; --cold B runs budget B once more with an empty cache (a fresh data directory),
so that decoding the images counts too. The run's own files give the per-epoch validation
accuracy and the test accuracy (the test set is read once, at the end of each run).

Baseline, side by side in this process: the usual way a ResNet-18 is trained on CIFAR-10 (3x3
stem, SGD lr 0.1, momentum 0.9, weight decay 5e-4, the cosine schedule over 200 epochs that
tutorial runs set, random crop and flip through torchvision transforms in a DataLoader with one
worker per core, eager fp32). It trains until the budget's wall time is spent (its data loading
counted), then is evaluated on the test set; that evaluation is not counted against it. The
ratio of error rates compares the two at each budget given to both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_loader import baseline_loader  # noqa: E402
from common import machine, write_json  # noqa: E402

from reslab.data import default_data_dir, holdout, load_dataset  # noqa: E402
from reslab.models import create_model  # noqa: E402
from reslab.run.config import parse_duration  # noqa: E402
from reslab.run.device import cpu_has_bf16  # noqa: E402
from reslab.run.directory import RunDir  # noqa: E402

TUTORIAL = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "cosine_epochs": 200}


def reslab_run(budget_s: float, args, out: Path, data_dir: Path) -> dict:
    """`reslab train --time-budget` in a child process; its wall time, summary and epochs."""
    cmd = [
        sys.executable,
        "-m",
        "reslab",
        "train",
        "--time-budget",
        f"{budget_s:g}",
        "--recipe",
        args.recipe,
        "--dataset",
        args.data,
        "--out",
        str(out),
        "--force",
        "--quiet",
        *args.train_args,
    ]
    env = {**os.environ, "RESLAB_DATA": str(data_dir)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"reslab train failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    run = RunDir(out)
    summary, rows = json.loads(run.summary.read_text()), run.read_metrics()
    return {
        "budget_s": budget_s,
        "wall_s": round(wall, 2),
        "overshoot_pct": round(100 * (wall / budget_s - 1), 2),
        "test_acc": summary["test_acc"],
        "epochs": summary["epochs"],
        "steps": summary["steps"],
        "stopped_by": summary.get("stopped_by"),
        "train_time_s": round(summary["wall_time_s"], 1),
        "precision": summary.get("precision"),
        "val_acc": [r["val_acc"] for r in rows],
        "command": " ".join(["reslab", *cmd[3:]]),
    }


def _evaluate(model, data, mean, std, batch_size: int) -> float:
    model.eval()
    mean_t = torch.tensor(mean).view(1, -1, 1, 1)
    std_t = torch.tensor(std).view(1, -1, 1, 1)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            x = (data.images[i : i + batch_size].float() / 255 - mean_t) / std_t
            correct += (model(x).argmax(1) == data.labels[i : i + batch_size]).sum().item()
    return correct / len(data)


def baseline_run(budget_s: float, args) -> dict:
    """The tutorial ResNet-18, trained until `budget_s` of wall time is spent, then evaluated."""
    start = time.perf_counter()
    torch.manual_seed(0)
    data = load_dataset(args.data)
    train_set, _ = holdout(data, 0, 0)
    model = create_model(args.baseline_model, num_classes=data.num_classes)
    loader = baseline_loader(
        train_set, data.mean, data.std, args.baseline_batch, args.workers, torch.device("cpu")
    )
    opt = torch.optim.SGD(
        model.parameters(),
        lr=TUTORIAL["lr"],
        momentum=TUTORIAL["momentum"],
        weight_decay=TUTORIAL["weight_decay"],
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=TUTORIAL["cosine_epochs"])
    loss_fn = torch.nn.CrossEntropyLoss()
    steps, done = 0, False
    while not done:
        model.train()
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            if time.perf_counter() - start >= budget_s:
                done = True
                break
        else:  # an epoch ended: the tutorial steps its schedule per epoch
            sched.step()
    trained = time.perf_counter() - start
    del loader  # stop the workers before evaluating
    acc = _evaluate(model, data.test, data.mean, data.std, 500)
    return {
        "budget_s": budget_s,
        "model": args.baseline_model,
        "train_wall_s": round(trained, 1),
        "eval_s": round(time.perf_counter() - start - trained, 1),
        "steps": steps,
        "epochs": round(steps * args.baseline_batch / len(train_set), 2),
        "test_acc": acc,
    }


def plot(results: list[dict], baseline: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    xs = [r["budget_s"] / 60 for r in results]
    ax.plot(xs, [100 * r["test_acc"] for r in results], "o-", label="reslab train --time-budget")
    for x, r in zip(xs, results, strict=True):
        ax.annotate(
            f"{100 * r['test_acc']:.1f}",
            (x, 100 * r["test_acc"]),
            fontsize=8,
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
        )
    if baseline:
        ax.plot(
            [b["budget_s"] / 60 for b in baseline],
            [100 * b["test_acc"] for b in baseline],
            "s--",
            label=f"tutorial {baseline[0]['model']} (same wall time)",
        )
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.set_xlabel("budget, minutes of wall time (whole command)")
    ax.set_ylabel("test accuracy, %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def table(results: list[dict], baseline: list[dict]) -> str:
    by_budget = {b["budget_s"]: b for b in baseline}
    lines = [
        "| budget | cache | wall s | overshoot | epochs | test acc | baseline acc | error ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b = by_budget.get(r["budget_s"]) if r["cache"] == "warm" else None
        ratio = (1 - r["test_acc"]) / (1 - b["test_acc"]) if b else None
        lines.append(
            f"| {r['budget_s']:g} s | {r['cache']} | {r['wall_s']:.1f} | "
            f"{r['overshoot_pct']:+.2f}% | {r['epochs']} | {100 * r['test_acc']:.2f}% | "
            + (f"{100 * b['test_acc']:.2f}% | {ratio:.2f} |" if b else "- | - |")
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="cifar10-sample", help="data set name or folder:DIR")
    p.add_argument("--budgets", nargs="+", default=["10m"], help="durations: 90s, 10m, 1h")
    p.add_argument("--recipe", default="cpu-budget", help="the reslab recipe to run")
    p.add_argument(
        "--baseline-budgets",
        nargs="*",
        default=None,
        help="budgets the baseline runs for (default: all of --budgets; none: nothing given)",
    )
    p.add_argument("--baseline-model", default="resnet18_cifar")
    p.add_argument("--baseline-batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--cold", help="run this budget once more with an empty data cache")
    p.add_argument("--out", default="runs/bench-time-budget")
    p.add_argument("--plot", help="write the accuracy-against-budget curve here (PNG)")
    p.add_argument("--json")
    p.add_argument(
        "train_args", nargs="*", help="after --: more flags for reslab train (e.g. --seed 1)"
    )
    args = p.parse_args()
    budgets = [parse_duration(b) for b in args.budgets]
    base_budgets = (
        budgets
        if args.baseline_budgets is None
        else [parse_duration(b) for b in args.baseline_budgets]
    )
    out = Path(args.out)
    info = {**machine(), "cpu_bf16": cpu_has_bf16()}  # what --precision auto would pick
    print(json.dumps(info))
    warm_dir = default_data_dir()
    load_dataset(args.data, warm_dir)  # the warm runs find the cache filled
    results = []
    for b in budgets:
        r = {"cache": "warm", **reslab_run(b, args, out / f"reslab-{b:g}s", warm_dir)}
        results.append(r)
        print(json.dumps(r), flush=True)
    if args.cold:
        b = parse_duration(args.cold)
        with tempfile.TemporaryDirectory() as cold_dir:
            run = reslab_run(b, args, out / f"reslab-{b:g}s-cold", Path(cold_dir))
        r = {"cache": "cold", **run}
        results.append(r)
        print(json.dumps(r), flush=True)
    baseline = []
    for b in base_budgets:
        r = baseline_run(b, args)
        baseline.append(r)
        print(json.dumps(r), flush=True)
    print(table(results, baseline))
    if args.plot:
        plot([r for r in results if r["cache"] == "warm"], baseline, args.plot)
    payload = {
        "machine": info,
        "recipe": args.recipe,
        "data": args.data,
        "reslab": results,
        "baseline": baseline,
        "baseline_setup": {
            **TUTORIAL,
            "model": args.baseline_model,
            "batch_size": args.baseline_batch,
            "workers": args.workers,
        },
        "error_ratio": {
            f"{b['budget_s']:g}": round((1 - r["test_acc"]) / (1 - b["test_acc"]), 3)
            for r in results
            for b in baseline
            if r["cache"] == "warm" and r["budget_s"] == b["budget_s"]
        },
        "torch": torch.__version__,
    }
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
