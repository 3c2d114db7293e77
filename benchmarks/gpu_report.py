"""Sum up a benchmarks/gpu_suite.sh results folder as markdown tables (stdout) and JSON.

    python benchmarks/gpu_report.py RESULTS_DIR [--json FILE]

Times of `reslab train` runs come from their own metrics: an epoch's `epoch_time_s` counts the
training steps only (no evaluation, no checkpoint writes). The first epoch also pays for
compilation and cuDNN's algorithm search; that warm-up is estimated as the first epoch's time
minus the median of the later epochs, reported apart, and the training time "without warm-up" is
the sum of the epoch times less it. `command_s` is the whole `reslab train` command: start-up,
data loading, compilation and the final (test-time-augmented) evaluation included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

TARGET = 0.90  # the accuracy whose time is reported

# Accuracy ablation runs: name prefix -> the trick removed.
ABLATIONS = {
    "no-ema": "EMA of the weights (--ema 0)",
    "no-tta": "flip test-time augmentation (--no-tta)",
    "no-smoothing": "label smoothing 0.2 (--label-smoothing 0)",
    "no-nesterov": "Nesterov momentum (--optimizer sgd)",
    "decay-all": "no weight decay on norms and biases (--decay-norm-bias)",
}
SPEED = {
    "eager": "torch.compile (--no-compile)",
    "fp32": "bf16 autocast (--precision fp32)",
    "contiguous": "channels-last (--no-channels-last)",
}


def timing(run: dict) -> dict:
    """Test accuracy and times of one run (see the module's docstring)."""
    epochs = [row["epoch_time_s"] for row in run.get("metrics", [])]
    summary = json.loads(run["summary"])
    later = statistics.median(epochs[1:]) if len(epochs) > 1 else 0.0
    warmup = max(epochs[0] - later, 0.0) if len(epochs) > 1 else 0.0
    return {
        "test_acc": summary["test_acc"],
        "epochs": len(epochs),
        "train_s": sum(epochs),
        "warmup_s": warmup,
        "train_s_without_warmup": sum(epochs) - warmup,
        "epoch_s": later or (epochs[0] if epochs else None),
        "command_s": run.get("command_s"),
    }


def spread(values: list[float]) -> dict:
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def tests_summary(path: Path) -> dict | None:
    if not path.is_file():
        return None
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    n = int(suite.get("tests", 0))
    skipped = int(suite.get("skipped", 0))
    return {"tests": n, "skipped": skipped, "failed": failed, "passed": n - skipped - len(failed)}


def report(folder: Path) -> tuple[str, dict]:
    lines, facts = [], {}
    machine = folder / "machine.txt"
    if machine.is_file():
        lines += ["## Machine", "", "```", machine.read_text().strip(), "```", ""]
        facts["machine"] = machine.read_text().strip()
    tests = tests_summary(folder / "tests.xml")
    facts["tests"] = tests
    if tests:
        lines += [
            "## CUDA tests",
            "",
            f"{tests['passed']} passed, {len(tests['failed'])} failed, {tests['skipped']} skipped"
            + "".join(f"\n- failed: {name}" for name in tests["failed"]),
            "",
        ]
    runs_file = folder / "runs.json"
    runs = json.loads(runs_file.read_text()) if runs_file.is_file() else {}
    done = {name: timing(run) for name, run in runs.items() if "summary" in run}
    facts["runs"] = done
    seeds = [t for name, t in sorted(done.items()) if name.startswith("fast-s")]
    if seeds:
        acc = spread([t["test_acc"] for t in seeds])
        train = spread([t["train_s_without_warmup"] for t in seeds])
        facts["fast"] = {"test_acc": acc, "train_s_without_warmup": train}
        lines += [
            "## `--recipe fast` over seeds",
            "",
            "| seed | test acc | train s (no warm-up) | warm-up s | epoch s | command s |",
            "|---|---|---|---|---|---|",
        ]
        for name, t in sorted(done.items()):
            if name.startswith("fast-s"):
                lines.append(
                    f"| {name[6:]} | {pct(t['test_acc'])} | {t['train_s_without_warmup']:.2f} | "
                    f"{t['warmup_s']:.1f} | {t['epoch_s']:.3f} | {t['command_s'] or 0:.1f} |"
                )
        lines += [
            "",
            f"Test accuracy over {acc['n']} seeds: mean {pct(acc['mean'])}, std "
            f"{100 * acc['std']:.2f} points, min {pct(acc['min'])}, max {pct(acc['max'])}. "
            f"Training time without warm-up: mean {train['mean']:.2f} s.",
            "",
        ]
        plateau = done.get("plateau-s0")
        if plateau:
            gap = plateau["test_acc"] - acc["mean"]
            facts["plateau"] = {**plateau, "gap_to_fast_mean": gap}
            lines += [
                f"Plateau (the same recipe, {plateau['epochs']} epochs, seed 0): "
                f"{pct(plateau['test_acc'])}; the fast recipe's seed mean is "
                f"{100 * abs(gap):.2f} points {'below' if gap >= 0 else 'above'} it.",
                "",
            ]
        epoch_s = statistics.median(t["epoch_s"] for t in seeds)
        curve = sorted(
            [(t["epochs"], t["test_acc"]) for n, t in done.items() if n.startswith("short-")]
            + [(t["epochs"], t["test_acc"]) for n, t in done.items() if n == "fast-s0"]
        )
        reached = [e for e, a in curve if a >= TARGET]
        facts["time_to_target"] = {
            "target": TARGET,
            "curve": curve,
            "epochs": reached[0] if reached else None,
            "train_s": reached[0] * epoch_s if reached else None,
        }
        lines += [
            "Accuracy by length (seed 0): "
            + ", ".join(f"{e} epochs {pct(a)}" for e, a in curve)
            + (
                f". Time to {pct(TARGET)}: {reached[0]} epochs, {reached[0] * epoch_s:.2f} s of "
                f"training at the median epoch time of the seeds ({epoch_s:.3f} s)."
                if reached
                else f". No length reached {pct(TARGET)}."
            ),
            "",
        ]
        lines += ablation_tables(done, facts)
    for name in ("bench_resnet20.json", "bench_more.json", "bench_imagenet.json"):
        path = folder / name
        if path.is_file():
            lines += bench_table(json.loads(path.read_text()), name)
            facts[name] = json.loads(path.read_text())
    return "\n".join(lines) + "\n", facts


def ablation_tables(done: dict, facts: dict) -> list[str]:
    base = [done[f"fast-s{s}"]["test_acc"] for s in (0, 1) if f"fast-s{s}" in done]
    lines = []
    if base and any(n.split("-s")[0] in ABLATIONS for n in done):
        lines += [
            f"## Ablation: accuracy (seeds 0 and 1; full recipe {pct(statistics.fmean(base))})",
            "",
            "| removed | test acc | change (points) |",
            "|---|---|---|",
        ]
        facts["ablation"] = {}
        for prefix, what in ABLATIONS.items():
            accs = [t["test_acc"] for n, t in done.items() if n.rsplit("-s", 1)[0] == prefix]
            if accs:
                delta = statistics.fmean(accs) - statistics.fmean(base)
                facts["ablation"][prefix] = {"test_acc": accs, "change": delta}
                lines.append(f"| {what} | {pct(statistics.fmean(accs))} | {100 * delta:+.2f} |")
        lines.append("")
    full = done.get("fast-s0")
    if full and any(f"{k}-s0" in done for k in SPEED):
        lines += [
            "## Ablation: speed (seed 0, each alone on the GPU)",
            "",
            "| removed | train s (no warm-up) | slower by | warm-up s | test acc |",
            "|---|---|---|---|---|",
            f"| nothing | {full['train_s_without_warmup']:.2f} | 1.00x | {full['warmup_s']:.1f} | "
            f"{pct(full['test_acc'])} |",
        ]
        facts["speed"] = {}
        for prefix, what in SPEED.items():
            t = done.get(f"{prefix}-s0")
            if t:
                ratio = t["train_s_without_warmup"] / full["train_s_without_warmup"]
                facts["speed"][prefix] = {**t, "slower_by": ratio}
                lines.append(
                    f"| {what} | {t['train_s_without_warmup']:.2f} | {ratio:.2f}x | "
                    f"{t['warmup_s']:.1f} | {pct(t['test_acc'])} |"
                )
        lines.append("")
    return lines


def bench_table(result: dict, name: str) -> list[str]:
    lines = [
        f"## {name}: {result['precision']}{', compiled' if result['compile'] else ''}, ceiling "
        f"{result['ceiling_gflops'] / 1e3:.1f} TFLOP/s ({result['ceiling_precision']} matrix "
        f"product), {result['steps']} steps after {result['warmup']}",
        "",
        "| model | batch | baseline img/s | reslab img/s | ratio | epoch s (base/reslab) | "
        "TFLOP/s | of ceiling | peak MiB (base/reslab) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["results"]:
        if "input" in r:
            label = f"{r['model']} @224{' compiled' if r['compiled'] else ''}"
            lines.append(
                f"| {label} | {r['batch_size']} | - | {r['reslab_images_per_s']:.0f} | - | - | "
                f"{r['reslab_tflops']:.1f} | {100 * r['ceiling_fraction']:.1f}% | "
                f"{r['reslab_peak_mib']:.0f} |"
            )
        else:
            lines.append(
                f"| {r['model']} | {r['batch_size']} | {r['baseline_images_per_s']:.0f} | "
                f"{r['reslab_images_per_s']:.0f} | {r['ratio']:.2f}x | "
                f"{r['baseline_epoch_s']:.2f}/{r['reslab_epoch_s']:.2f} | "
                f"{r['reslab_tflops']:.2f} | {100 * r['ceiling_fraction']:.1f}% | "
                f"{r['baseline_peak_mib']:.0f}/{r['reslab_peak_mib']:.0f} |"
            )
    return [*lines, ""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    text, facts = report(args.folder)
    print(text, end="")
    if args.json:
        args.json.write_text(json.dumps(facts, indent=2))


if __name__ == "__main__":
    main()
