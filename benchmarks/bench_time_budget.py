"""Accuracy in a fixed wall-clock budget: `reslab train --time-budget` against the tutorial way.

    python benchmarks/bench_time_budget.py --data folder:/path/to/cifar10 --budgets 10m
    python benchmarks/bench_time_budget.py --data folder:DIR --budgets 2m 5m 10m 20m \\
        --baseline-budgets 10m --cold 2m --plot docs/figures/time-budget.png --json out.json
    python benchmarks/bench_time_budget.py --data folder:DIR --budgets 2m 5m 10m 20m \\
        --seeds 3 --seeds-at 10m --precisions fp32 bf16 --baseline-budgets 10m ...
    python benchmarks/bench_time_budget.py --combine all.json again.json --plot P --json out.json

reslab: the shipped command, run as a user runs it (`python -m reslab train --time-budget B
--recipe R --dataset D ...` in a subprocess), its wall time taken from just before the process
starts to just after it exits, so start-up, data loading and the final evaluation count. The
overshoot is that wall time against the budget. Each budget's run uses the data cache warmed by
an earlier run; --cold B runs budget B once more with an empty cache (a fresh data directory),
so that decoding the images counts too. The run's own files give the per-epoch validation
accuracy and the test accuracy (the test set is read once, at the end of each run).

--seeds N runs seeds 0 to N-1 (`--seed`) at the budgets of --seeds-at (default: every budget),
seed 0 at the others; --precisions runs the whole grid once per precision (`--precision`). Each
(precision, budget) gets the mean of its seeds with a t-based 95% interval, and two precisions
their paired difference (the same seeds draw the same validation split and data order).

--combine reads results files as one, a later file's run replacing the same point of an earlier
one (a point run again, after a fix or on cores that were not idle); the replaced runs are kept
in the output under "replaced", and each run names its file and, where known, its commit.

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
from reslab.experiments.analysis import sample_interval  # noqa: E402
from reslab.models import create_model  # noqa: E402
from reslab.run.config import parse_duration, read_toml  # noqa: E402
from reslab.run.device import cpu_has_bf16  # noqa: E402
from reslab.run.directory import RunDir  # noqa: E402

TUTORIAL = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "cosine_epochs": 200}


def reslab_run(
    budget_s: float,
    args,
    out: Path,
    data_dir: Path,
    seed: int | None = None,
    precision: str | None = None,
) -> dict:
    """`reslab train --time-budget` in a child process; its wall time, summary and epochs. A
    seed or precision given here is passed on; None leaves the recipe's."""
    chosen = ["--seed", str(seed)] if seed is not None else []
    chosen += ["--precision", precision] if precision is not None else []
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
        *chosen,
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
        "seed": read_toml(run.config)["seed"],
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


def summarize(results: list[dict]) -> list[dict]:
    """Per (precision, budget) of the warm runs: the mean test accuracy over seeds and its 95%
    interval (t-based; none for one seed)."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if r["cache"] == "warm":
            groups.setdefault((r["arm"], r["budget_s"]), []).append(r)
    rows = []
    for (arm, budget), runs in groups.items():
        iv = sample_interval(r["test_acc"] for r in runs)
        rows.append(
            {
                "precision": arm,  # as asked (--precisions); "auto" resolves per run
                "resolved": sorted({r["precision"] for r in runs}),
                "budget_s": budget,
                "seeds": sorted(r["seed"] for r in runs),
                "mean_test_acc": iv.estimate,
                "low": iv.low if iv.df else None,
                "high": iv.high if iv.df else None,
                "mean_wall_s": sum(r["wall_s"] for r in runs) / len(runs),
                "mean_epochs": sum(r["epochs"] for r in runs) / len(runs),
            }
        )
    return rows


def paired(results: list[dict]) -> list[dict]:
    """Each later precision minus the first, per budget, paired by seed (the seed draws the
    validation split and the data order, which both precisions then share)."""
    warm = [r for r in results if r["cache"] == "warm"]
    precisions = list(dict.fromkeys(r["arm"] for r in warm))
    acc = {(r["arm"], r["budget_s"], r["seed"]): r["test_acc"] for r in warm}
    rows = []
    for other in precisions[1:]:
        for budget in dict.fromkeys(r["budget_s"] for r in warm):
            seeds = sorted(
                s
                for (p, b, s) in acc
                if p == other and b == budget and (precisions[0], b, s) in acc
            )
            if not seeds:
                continue
            iv = sample_interval(
                acc[other, budget, s] - acc[precisions[0], budget, s] for s in seeds
            )
            rows.append(
                {
                    "difference": f"{other} - {precisions[0]}",
                    "budget_s": budget,
                    "seeds": seeds,
                    "mean": iv.estimate,
                    "low": iv.low if iv.df else None,
                    "high": iv.high if iv.df else None,
                }
            )
    return rows


def plot(results: list[dict], baseline: list[dict], path: str) -> None:
    """Test accuracy against the budget: a line through each precision's means, a dot per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    means = summarize(results)
    budgets = sorted({m["budget_s"] for m in means})
    # A label goes above the highest mean at its budget, below the others: off the other line.
    top = {b: max(m["mean_test_acc"] for m in means if m["budget_s"] == b) for b in budgets}
    for precision in dict.fromkeys(m["precision"] for m in means):
        rows = sorted(
            (m for m in means if m["precision"] == precision), key=lambda m: m["budget_s"]
        )
        xs, ys = [m["budget_s"] / 60 for m in rows], [100 * m["mean_test_acc"] for m in rows]
        (line,) = ax.plot(xs, ys, "o-", label=f"reslab train --time-budget, {precision}")
        runs = [r for r in results if r["cache"] == "warm" and r["arm"] == precision]
        ax.plot(
            [r["budget_s"] / 60 for r in runs],
            [100 * r["test_acc"] for r in runs],
            ".",
            color=line.get_color(),
            alpha=0.5,
        )
        for m, x, y in zip(rows, xs, ys, strict=True):
            n = len(m["seeds"])
            ax.annotate(
                f"{y:.1f}" + (f" (n={n})" if n > 1 else ""),
                (x, y),
                fontsize=7,
                textcoords="offset points",
                xytext=(0, 6 if m["mean_test_acc"] >= top[m["budget_s"]] else -12),
                ha="center",
                color=line.get_color(),
            )
    if baseline:
        ax.plot(
            [b["budget_s"] / 60 for b in baseline],
            [100 * b["test_acc"] for b in baseline],
            "s--",
            label=f"tutorial {baseline[0]['model']} (same wall time)",
        )
    ax.margins(y=0.1)  # room for the labels above the top line
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks([b / 60 for b in budgets], [f"{b / 60:g}" for b in budgets])
    ax.set_xlabel("budget, minutes of wall time (whole command)")
    ax.set_ylabel("test accuracy, %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def _interval(row: dict, key: str = "mean_test_acc") -> str:
    text = f"{100 * row[key]:.2f}%"
    return text + (
        f" ({100 * row['low']:.2f} to {100 * row['high']:.2f})" if row["low"] is not None else ""
    )


def _precision(run: dict) -> str:
    """The precision asked for, and what it resolved to where that differs (auto)."""
    asked, used = run["arm"], run["precision"]
    return used if asked == used else f"{asked} ({used})"


def table(results: list[dict], baseline: list[dict]) -> str:
    """The runs one per line, then the means by precision and budget with the error ratio
    against the baseline of the same budget, then the paired differences."""
    by_budget = {b["budget_s"]: b for b in baseline}
    lines = [
        "| budget | precision | seed | cache | wall s | overshoot | epochs | test acc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['budget_s']:g} s | {_precision(r)} | {r['seed']} | {r['cache']} | "
            f"{r['wall_s']:.1f} | {r['overshoot_pct']:+.2f}% | {r['epochs']} | "
            f"{100 * r['test_acc']:.2f}% |"
        )
    lines += [
        "",
        "| budget | precision | seeds | mean test acc (95% int.) | baseline acc | error ratio |",
        "|---|---|---|---|---|---|",
    ]
    for m in summarize(results):
        b = by_budget.get(m["budget_s"])
        ratio = (1 - m["mean_test_acc"]) / (1 - b["test_acc"]) if b else None
        lines.append(
            f"| {m['budget_s']:g} s | {m['precision']} | {len(m['seeds'])} | {_interval(m)} | "
            + (f"{100 * b['test_acc']:.2f}% | {ratio:.2f} |" if b else "- | - |")
        )
    diffs = paired(results)
    if diffs:
        lines += [
            "",
            "| budget | difference | seeds | mean (95% interval), points |",
            "|---|---|---|---|",
        ]
        for d in diffs:
            span = (
                f" ({100 * d['low']:+.2f} to {100 * d['high']:+.2f})"
                if d["low"] is not None
                else ""
            )
            lines.append(
                f"| {d['budget_s']:g} s | {d['difference']} | {len(d['seeds'])} | "
                f"{100 * d['mean']:+.2f}{span} |"
            )
    return "\n".join(lines)


def grid(args, budgets: list[float]) -> list[tuple[str | None, float, int | None]]:
    """(precision, budget, seed) of every warm run, in the order they run."""
    seeded = set(budgets if args.seeds_at is None else map(parse_duration, args.seeds_at))
    unknown = seeded - set(budgets)
    if unknown:
        raise SystemExit(f"--seeds-at {sorted(unknown)}: not among --budgets")
    runs = []
    for precision in args.precisions or [None]:
        for b in budgets:
            if args.seeds is None:
                runs.append((precision, b, None))
            else:
                runs += [(precision, b, s) for s in range(args.seeds if b in seeded else 1)]
    return runs


def source_commit() -> str | None:
    """The git commit of the reslab source the runs import, where it is a checkout."""
    import reslab

    proc = subprocess.run(
        ["git", "-C", str(Path(reslab.__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def combine(paths: list[str]) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """Results files of this benchmark read as one, in order: a later file's run replaces an
    earlier one of the same precision, budget, seed and cache (a point run again), and its
    baseline one of the same budget. Every file must come from the same machine, recipe and
    data. Returns that file header, the runs (each naming its file), the baselines and the runs
    replaced."""
    header, runs, baselines, replaced = None, {}, {}, []
    for path in paths:
        try:
            payload = json.loads(Path(path).read_text())
            same = {k: payload[k] for k in ("machine", "recipe", "data", "baseline_setup")}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"{path}: not a results file of this benchmark ({e!r})") from None
        if header is None:
            header = same
        for key, value in same.items():
            if value != header[key]:
                raise SystemExit(f"{path}: another {key} than {paths[0]}'s; they do not combine")
        for r in payload["reslab"]:
            key = (r["arm"], r["budget_s"], r["seed"], r["cache"])
            if key in runs:
                replaced.append(runs[key])
            runs[key] = {**r, "file": r.get("file", str(path))}
        for b in payload["baseline"]:
            baselines[b["budget_s"]] = {**b, "file": b.get("file", str(path))}
    return header, list(runs.values()), list(baselines.values()), replaced


def run_name(precision: str | None, budget_s: float, last: int | str | None) -> str:
    """A run's directory under --out: reslab-bf16-600s-seed2, reslab-fp32-120s-cold. Each names
    its precision, so that grids of several precisions (or several invocations with one --out)
    never share a directory."""
    tail = [] if last is None else [last if isinstance(last, str) else f"seed{last}"]
    return "-".join(["reslab", *([precision] if precision else []), f"{budget_s:g}s", *tail])


def measure(args, p: argparse.ArgumentParser) -> tuple[dict, list[dict], list[dict]]:
    """Run the grid, the cold run and the baseline; returns the file header, runs, baselines."""
    if args.seeds is not None and args.seeds < 1:
        p.error(f"--seeds {args.seeds}: give 1 or more")
    if args.seeds_at and args.seeds is None:
        p.error("--seeds-at needs --seeds")
    if args.precisions and len(set(args.precisions)) < len(args.precisions):
        p.error(f"--precisions {' '.join(args.precisions)}: each once")
    budgets = [parse_duration(b) for b in args.budgets]
    base_budgets = (
        budgets
        if args.baseline_budgets is None
        else [parse_duration(b) for b in args.baseline_budgets]
    )
    runs = grid(args, budgets)
    out = Path(args.out)
    info = {**machine(), "cpu_bf16": cpu_has_bf16()}  # what --precision auto would pick
    print(json.dumps(info))
    commit = source_commit()
    warm_dir = default_data_dir()
    load_dataset(args.data, warm_dir)  # the warm runs find the cache filled
    results = []
    for precision, b, seed in runs:
        run = reslab_run(b, args, out / run_name(precision, b, seed), warm_dir, seed, precision)
        r = {"cache": "warm", "arm": precision or run["precision"], "commit": commit, **run}
        results.append(r)
        print(json.dumps(r), flush=True)
    if args.cold:
        b = parse_duration(args.cold)
        precision = args.precisions[0] if args.precisions else None
        where = out / run_name(precision, b, "cold")
        with tempfile.TemporaryDirectory() as cold_dir:
            run = reslab_run(b, args, where, Path(cold_dir), None, precision)
        r = {"cache": "cold", "arm": precision or run["precision"], "commit": commit, **run}
        results.append(r)
        print(json.dumps(r), flush=True)
    baseline = []
    for b in base_budgets:
        r = baseline_run(b, args)
        baseline.append(r)
        print(json.dumps(r), flush=True)
    setup = {
        **TUTORIAL,
        "model": args.baseline_model,
        "batch_size": args.baseline_batch,
        "workers": args.workers,
    }
    header = {"machine": info, "recipe": args.recipe, "data": args.data, "baseline_setup": setup}
    return header, results, baseline


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="cifar10-sample", help="data set name or folder:DIR")
    p.add_argument("--budgets", nargs="+", default=["10m"], help="durations: 90s, 10m, 1h")
    p.add_argument("--recipe", default="cpu-budget", help="the reslab recipe to run")
    p.add_argument(
        "--seeds",
        type=int,
        help="run seeds 0 to N-1 (--seed) at the budgets of --seeds-at, seed 0 at the others "
        "(default: the recipe's seed, once)",
    )
    p.add_argument("--seeds-at", nargs="+", help="the budgets --seeds applies to (default: all)")
    p.add_argument(
        "--precisions",
        nargs="+",
        choices=("fp32", "bf16", "fp16", "auto"),
        help="run the grid once per precision (--precision; default: the recipe's)",
    )
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
        "--combine",
        nargs="+",
        metavar="JSON",
        help="run nothing: read these results files (--json) as one, a later file's run "
        "replacing an earlier one of the same precision, budget, seed and cache, then write "
        "the table, --plot and --json of the whole",
    )
    p.add_argument(
        "train_args", nargs="*", help="after --: more flags for reslab train (e.g. --cutout 8)"
    )
    args = p.parse_args()
    replaced: list[dict] = []
    if args.combine:
        header, results, baseline, replaced = combine(args.combine)
    else:
        header, results, baseline = measure(args, p)
    print(table(results, baseline))
    if args.plot:
        plot(results, baseline, args.plot)
    means = summarize(results)
    by_budget = {b["budget_s"]: b for b in baseline}
    payload = {
        **header,
        "reslab": results,
        "means": means,
        "paired": paired(results),
        "baseline": baseline,
        "error_ratio": [
            {
                "precision": m["precision"],
                "budget_s": m["budget_s"],
                "ratio": round(
                    (1 - m["mean_test_acc"]) / (1 - by_budget[m["budget_s"]]["test_acc"]), 3
                ),
            }
            for m in means
            if m["budget_s"] in by_budget
        ],
        "torch": header["machine"]["torch"],
    }
    if args.combine:
        payload.update(combined_from=args.combine, replaced=replaced)
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
