"""The `reslab` command line. Each subcommand parses its flags and hands off to the library;
every error a user can cause ends here as one line on stderr and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from reslab.errors import DivergenceError, UserError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line and exit code 2, not a usage dump."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see `{self.prog} --help`)")


# -- reslab models ---------------------------------------------------------------------------


def _cmd_models(args: argparse.Namespace) -> int:
    from reslab.report.tables import models_table

    models_table(args.pattern, flops=not args.no_flops)
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered networks")
    p.add_argument(
        "pattern", nargs="?", default="*", help="shell-style name filter, e.g. 'resnet*'"
    )
    p.add_argument("--no-flops", action="store_true", help="skip the GFLOPs column (faster)")
    p.set_defaults(func=_cmd_models)


# -- reslab train ----------------------------------------------------------------------------

_RUN_FLAGS = ("config", "recipe", "out", "resume", "force", "quiet")


def _add_train(sub) -> None:
    import typing

    from reslab.train.config import FIELDS, TrainConfig, field_help

    p = sub.add_parser(
        "train",
        help="train a network; writes a run directory",
        description="Train a network. Settings come from the defaults, then "
        "--recipe, then --config FILE.toml, then these flags.",
    )
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of config keys")
    p.add_argument(
        "--recipe", help="named recipe (default he2015-cifar): he2015-cifar, cosine, quick"
    )
    p.add_argument(
        "--out", metavar="RUN_DIR", help="run directory (default runs/MODEL-DATASET-TIME)"
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    p.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    p.add_argument("--quiet", action="store_true", help="print only the final result")
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train with N processes on this machine (torchrun + DDP); --batch-size "
        "stays the global batch",
    )
    hints, helps = typing.get_type_hints(TrainConfig), field_help()
    for name in FIELDS:  # every config key is also a flag: --batch-size for batch_size
        kind = hints[name]
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            p.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=helps.get(name)
            )
        elif kind in (int, float, str):
            p.add_argument(flag, type=kind, default=None, help=helps.get(name))
        else:  # list of numbers
            p.add_argument(flag, type=float, nargs="+", default=None, help=helps.get(name))
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reslab.train import distributed, resume, train
    from reslab.train.config import FIELDS

    if args.nproc is not None:
        return _launch(args.nproc)
    flags = {k: v for k, v in vars(args).items() if k in FIELDS and v is not None}
    if distributed.restarted() and args.out and (Path(args.out) / "checkpoints/last.pt").is_file():
        # torchrun --max-restarts started this worker again: continue from the last checkpoint.
        args.resume, args.out, args.config, args.recipe, args.force = (
            args.out,
            None,
            None,
            None,
            False,
        )
        flags = {k: v for k, v in flags.items() if k in ("epochs", "max_steps", "device")}
    elif distributed.restarted():
        args.force = True  # it failed before its first checkpoint: start it over
    if args.resume:
        if args.config or args.recipe or args.out or args.force:
            raise UserError(
                "--resume takes its settings from the checkpoint; drop --config, "
                "--recipe, --out and --force"
            )
        result = resume(args.resume, flags, quiet=args.quiet)
    else:
        config = _train_config(args.config, args.recipe, flags)
        result = train(config, args.out or _default_out(config), force=args.force, quiet=args.quiet)
    if not distributed.from_env().is_main:
        return 0
    from reslab.report import write_report

    report = write_report([result.run_dir], result.run_dir)
    if args.quiet:
        print(f"test accuracy: {100 * result.summary['test_acc']:.2f}%")
    else:
        print(f"curves and report: {report}")
    return 0


def _launch(nproc: int) -> int:
    """Run this same command under torchrun with `nproc` processes on this machine."""
    import subprocess

    if nproc < 1:
        raise UserError("--nproc must be >= 1")
    argv = sys.argv[1:]
    rest, skip = [], False
    for a in argv:  # drop --nproc N / --nproc=N, keep everything else as typed
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "reslab",
        *rest,
    ]
    return subprocess.call(cmd)


def _train_config(path: str | None, recipe: str | None, flags: dict):
    from reslab.train.config import build_config, read_toml
    from reslab.train.recipes import get_recipe

    file_values = read_toml(path) if path else {}
    recipe = recipe or str(file_values.pop("recipe", "he2015-cifar"))
    file_values.pop("recipe", None)
    return build_config(get_recipe(recipe).overrides, file_values, flags)


def _default_out(config) -> str:
    import re
    import time

    dataset = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.dataset.split("/")[-1] or "data")
    return f"runs/{config.model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


# -- reslab eval / predict / export / report ---------------------------------------------------

_MODEL_HELP = "run directory, checkpoint (.pt) or weights (.safetensors)"


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained model: top-1/top-5, per class, confusion")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("--dataset", help="data set to evaluate on (default: the one it trained on)")
    p.add_argument("--data-dir", help="where data sets live")
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--tta", action="store_true", help="average with the mirrored image")
    p.add_argument(
        "--out", help="folder for eval.json and confusion.png (default: beside the model)"
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reslab.io import atomic_write_json
    from reslab.metrics import most_confused, per_class_accuracy
    from reslab.report.confusion import plot_confusion
    from reslab.train.assess import evaluate_saved
    from reslab.train.load import resolve

    result, classes = evaluate_saved(
        args.model, args.dataset, args.split, args.tta, args.data_dir, args.device
    )
    source = resolve(args.model)
    out = (
        Path(args.out)
        if args.out
        else (Path(args.model) if Path(args.model).is_dir() else source.parent)
    )
    report = {
        **result.as_dict(),
        "split": args.split,
        "tta": args.tta,
        "classes": classes,
        "per_class_acc": per_class_accuracy(result.confusion, classes),
        "most_confused": most_confused(result.confusion, classes),
        "confusion": result.confusion.tolist(),
    }
    atomic_write_json(out / "eval.json", report)
    plot_confusion(result.confusion, classes, out / "confusion.png")
    print(
        f"{args.split}: top-1 {100 * result.top1:.2f}%  top-5 {100 * result.top5:.2f}%  "
        f"loss {result.loss:.4f}  ({result.count} images)"
    )
    for name, acc in report["per_class_acc"].items():
        print(f"  {name:<16} {'-' if acc is None else f'{100 * acc:.1f}%'}")
    print(f"wrote {out / 'eval.json'} and {out / 'confusion.png'}")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="classify image files")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("images", nargs="+", help="JPEG or PNG files")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per image")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_cmd_predict)


def _cmd_predict(args: argparse.Namespace) -> int:
    import json

    from reslab.train.predict import predict_files

    if args.top_k < 1:
        raise UserError("--top-k must be >= 1")
    results = predict_files(args.model, args.images, args.top_k)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        guesses = ", ".join(f"{c['class']} {100 * c['prob']:.1f}%" for c in r["top"])
        print(f"{r['image']}: {guesses}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a trained model: ONNX, TorchScript or safetensors")
    p.add_argument("model", help=_MODEL_HELP)
    p.add_argument("--format", required=True, choices=("onnx", "safetensors", "torchscript"))
    p.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into the convolutions")
    p.add_argument("--out", help="output file (default: beside the model, named by format)")
    p.set_defaults(func=_cmd_export)


_SUFFIX = {"onnx": ".onnx", "safetensors": ".safetensors", "torchscript": ".torchscript.pt"}


def _cmd_export(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from reslab.models import export
    from reslab.models.fold import fold_batchnorm
    from reslab.train.load import load, resolve

    loaded = load(args.model)
    model, folded = loaded.model, 0
    if args.fold_bn:
        model, folded = fold_batchnorm(model)
    source = resolve(args.model)
    stem = "model-folded" if args.fold_bn else "model-export"
    out = Path(args.out) if args.out else source.parent / f"{stem}{_SUFFIX[args.format]}"
    shape = (1, loaded.data["in_channels"], *loaded.data["image_size"])
    if args.format == "onnx":
        export.export_onnx(model, out, input_shape=shape)
    elif args.format == "torchscript":
        export.export_torchscript(model, out, input_shape=shape)
    else:
        meta = {"meta": json.dumps({"config": loaded.config.to_dict(), "data": loaded.data})}
        export.export_safetensors(model, out, metadata=meta)
    note = f" ({folded} BatchNorm layers folded)" if args.fold_bn else ""
    print(f"wrote {out}{note}")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="curves and a report.md for one or more runs")
    p.add_argument("runs", nargs="+", help="run directories (several are overlaid)")
    p.add_argument("--out", help="output folder (default: the run dir, or ./report for several)")
    p.add_argument("--title", help="report title")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reslab.report.markdown import write_report

    out = (
        Path(args.out)
        if args.out
        else (Path(args.runs[0]) if len(args.runs) == 1 else Path("report"))
    )
    path = write_report([Path(r) for r in args.runs], out, title=args.title)
    print(f"wrote {path}")
    return 0


# -- reslab experiment -------------------------------------------------------------------------


def _add_experiment(sub) -> None:
    p = sub.add_parser("experiment", help="run a grid of runs that tests a published claim")
    p.add_argument("name", help="batchnorm, degradation, optimizers, gradients or placement")
    p.add_argument(
        "--budget",
        default="quick",
        help="quick (the shipped sample, ~10 min on a "
        "2-core CPU), standard (full CIFAR-10) or paper",
    )
    p.add_argument("--dataset", help="data set instead of the budget's")
    p.add_argument("--seeds", type=int, default=1, help="repeats of each run (mean ± std)")
    p.add_argument("--out", help="output folder (default runs/experiments/NAME-BUDGET)")
    p.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="run N runs of the grid side by side, each its own process (one per GPU "
        "when there are GPUs; else the CPU cores are shared)",
    )
    p.set_defaults(func=_cmd_experiment)


def _cmd_experiment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reslab.experiments import EXPERIMENTS, get_budget, run_experiment
    from reslab.report.experiment import write_experiment_report

    if args.name not in EXPERIMENTS:
        raise UserError(
            f"experiment: unknown name {args.name!r}; allowed: {', '.join(EXPERIMENTS)}"
        )
    if args.seeds < 1:
        raise UserError("--seeds must be >= 1")
    if args.parallel < 1:
        raise UserError("--parallel must be >= 1")
    experiment, budget = EXPERIMENTS[args.name], get_budget(args.budget)
    out = Path(args.out or f"runs/experiments/{args.name}-{args.budget}")
    results = run_experiment(
        experiment, budget, out, args.dataset, args.seeds, parallel=args.parallel
    )
    sections = experiment.analyze(results, out)
    intro = (
        f"{experiment.summary} Budget `{budget.name}`: {budget.note}. Data set "
        f"`{args.dataset or budget.dataset}`, {args.seeds} seed(s) per run; run directories "
        f"under `runs/`. Every verdict below is computed from these runs."
    )
    path = write_experiment_report(out, experiment.title, intro, sections)
    for s in sections:
        print(f"{s.title}: {s.verdict}")
    print(f"wrote {path} and {path.with_suffix('.html')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reslab", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (
        _add_models,
        _add_train,
        _add_eval,
        _add_predict,
        _add_export,
        _add_report,
        _add_experiment,
    ):
        add(sub)
    return parser


def _version() -> str:
    from reslab import __version__

    return f"reslab {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    from reslab.train.stop import StopRequested

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UserError, DivergenceError, StopRequested) as e:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one rank speaks for all
            print(f"{'' if isinstance(e, StopRequested) else 'error: '}{e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
