"""The `reslab` command line. Each subcommand parses its flags and hands off to the library;
every error a user can cause ends here as one line on stderr and an exit code."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
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

    models_table(args.pattern)
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered networks")
    p.add_argument(
        "pattern", nargs="?", default="*", help="shell-style name filter, e.g. 'resnet*'"
    )
    p.set_defaults(func=_cmd_models)


# -- reslab train ----------------------------------------------------------------------------


def _add_train(sub) -> None:
    from reslab.run.config import FIELDS, describe
    from reslab.train.recipes import DEFAULT_RECIPE, RECIPES

    p = sub.add_parser(
        "train",
        help="train a network; writes a run directory",
        description="Train a network. Settings come from the defaults, then "
        "--recipe, then --config FILE.toml, then these flags.",
    )
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of config keys")
    p.add_argument(
        "--recipe",
        metavar="NAME",
        help=f"named recipe; one of {', '.join(RECIPES)} (default: {DEFAULT_RECIPE})",
    )
    p.add_argument(
        "--out", metavar="RUN_DIR", help="run directory (default runs/MODEL-DATASET-TIME)"
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    p.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    p.add_argument("--quiet", action="store_true", help="print only the final result")
    p.add_argument("--verbose", action="store_true", help="also print debugging details")
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train with N processes on this machine (torchrun + DDP); --batch-size "
        "stays the global batch",
    )
    for name in FIELDS:  # every config key is also a flag: --batch-size for batch_size
        _add_config_flag(p, name, describe(name))
    p.set_defaults(func=_cmd_train)


def _with_message(parse):
    """argparse shows a type's own message only for an ArgumentTypeError."""

    def typed(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return typed


def _add_config_flag(p: argparse.ArgumentParser, name: str, help: str) -> None:
    from reslab.run.config import FIELDS, HINTS, flag

    kind, parse = HINTS[name], FIELDS[name].metadata["parse"]
    if kind is bool:  # --KEY and its opposite, as `flag` spells them
        p.add_argument(flag(name), dest=name, action="store_true", default=None, help=help)
        off = flag(name, False)
        p.add_argument(off, dest=name, action="store_false", help=f"undo {flag(name)}")
    elif kind in (int, float, str):
        p.add_argument(
            flag(name), type=_with_message(parse) if parse else kind, default=None, help=help
        )
    else:  # list of numbers
        p.add_argument(flag(name), type=float, nargs="+", default=None, help=help)


def _cmd_train(args: argparse.Namespace) -> int:
    from reslab.run.config import FIELDS
    from reslab.run.directory import RunDir
    from reslab.train import compose_config, distributed, fit_restartable, resume
    from reslab.train.runtime import check_runtime

    flags = {k: v for k, v in vars(args).items() if k in FIELDS and v is not None}
    if args.resume:
        if args.config or args.recipe or args.out or args.force:
            raise UserError(
                "--resume takes its settings from the checkpoint; drop --config, "
                "--recipe, --out and --force"
            )
    else:
        config = compose_config(args.recipe, args.config, flags)
    if args.nproc is not None:
        if args.nproc < 1:
            raise UserError("--nproc must be >= 1")
        if not args.resume:  # refuse here what every worker would refuse
            check_runtime(config)
        code, message = distributed.launch_local(args.nproc, _without_nproc(sys.argv[1:]))
        if message is not None:
            print(f"error: {message}", file=sys.stderr)
        return code
    from reslab import STARTED  # a --time-budget counts the whole command

    if args.resume:
        result = resume(args.resume, flags, quiet=args.quiet, started=STARTED)
    else:
        out = args.out or RunDir.default(config.model, config.dataset).path
        result = fit_restartable(config, out, force=args.force, quiet=args.quiet, started=STARTED)
    if not distributed.from_env().is_main:
        return 0
    if result.finished_before:
        print(
            f"{result.run_dir} has already finished (test accuracy "
            f"{100 * result.summary['test_acc']:.2f}%); nothing to do"
        )
        return 0
    from reslab.report import write_report

    report = write_report([result.run_dir], result.run_dir)
    if args.quiet:
        print(f"test accuracy: {100 * result.summary['test_acc']:.2f}%")
    else:
        print(f"curves and report: {report}")
    return 0


def _without_nproc(argv: list[str]) -> list[str]:
    """The command as typed, less --nproc N / --nproc=N."""
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    return rest


# -- reslab eval / predict / export / report ---------------------------------------------------

_MODEL_HELP = (
    "run directory, checkpoint (.pt), weights (.safetensors), or a checkpoint of a known "
    "foreign format"
)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help=_MODEL_HELP)
    p.add_argument(
        "--pretrained",
        metavar="NAME",
        help="shipped weights instead of a file: resnet20, or resnet20.TAG (see `reslab models`)",
    )


def _load_model(args: argparse.Namespace):
    from reslab.infer import load, load_pretrained

    if (args.model is None) == (args.pretrained is None):
        raise UserError("give one of a model (run directory or file) and --pretrained NAME")
    return load_pretrained(args.pretrained) if args.pretrained else load(args.model)


def _add_eval(sub) -> None:
    from reslab.infer.evaluate import SPLITS
    from reslab.run.device import DEVICES

    p = sub.add_parser("eval", help="evaluate a trained model: top-1/top-5, per class, confusion")
    _add_model_args(p)
    p.add_argument("--dataset", help="data set to evaluate on (default: the one it trained on)")
    p.add_argument("--data-dir", help="where data sets live")
    p.add_argument(
        "--split", choices=SPLITS, default="test", help="test, or val: the run's own hold-out"
    )
    p.add_argument("--tta", action="store_true", help="average with the mirrored image")
    p.add_argument(
        "--out", help="folder for eval.json and confusion.png (default: beside the model)"
    )
    p.add_argument("--device", default="auto", choices=DEVICES, help="where to evaluate")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reslab.infer import evaluate
    from reslab.infer.evaluate import default_output
    from reslab.report.evaluation import write_evaluation
    from reslab.run.directory import default_location

    loaded = _load_model(args)
    ev = evaluate(loaded, args.dataset, args.split, args.tta, args.data_dir, args.device)
    if args.out:
        out = Path(args.out)
    elif args.pretrained:  # shipped weights live in the package: their results go under runs/
        out = default_location("eval", args.pretrained)
    else:
        out = default_output(args.model, loaded)
    json_path, png_path = write_evaluation(ev, out)
    print(
        f"{args.split}: top-1 {100 * ev.top1:.2f}%  top-5 {100 * ev.top5:.2f}%  "
        f"loss {ev.loss:.4f}  ({ev.count} images)"
    )
    for name, acc in ev.per_class_accuracy().items():
        print(f"  {name:<16} {'-' if acc is None else f'{100 * acc:.1f}%'}")
    print(f"wrote {json_path} and {png_path}")
    return 0


def _add_predict(sub) -> None:
    from reslab.run.device import DEVICES

    p = sub.add_parser(
        "predict",
        help="classify image files",
        usage="reslab predict (MODEL | --pretrained NAME) IMAGE [IMAGE ...] [options]",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="MODEL IMAGE", help=f"the model ({_MODEL_HELP}), then images"
    )
    p.add_argument(
        "--pretrained",
        metavar="NAME",
        help="shipped weights instead of a model file: resnet20 or resnet20.TAG; then every "
        "argument is an image",
    )
    p.add_argument("--top-k", type=int, default=3, help="classes to show per image")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--device", default="auto", choices=DEVICES, help="where to run the model")
    p.set_defaults(func=_cmd_predict)


def _cmd_predict(args: argparse.Namespace) -> int:
    import json

    from reslab.infer import predict

    if args.top_k < 1:
        raise UserError("--top-k must be >= 1")
    args.model, images = (
        (None, args.inputs) if args.pretrained else (args.inputs[0], args.inputs[1:])
    )
    if not images:
        raise UserError("predict: no image files given")
    results = predict(_load_model(args), images, args.top_k, args.device)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return 0
    for r in results:
        guesses = ", ".join(f"{name} {100 * prob:.1f}%" for name, prob in r.top)
        print(f"{r.image}: {guesses}")
    return 0


def _add_export(sub) -> None:
    from reslab.models.export import DEFAULT_INPUT, INPUTS

    p = sub.add_parser("export", help="export a trained model: ONNX, TorchScript or safetensors")
    _add_model_args(p)
    p.add_argument("--format", required=True, choices=("onnx", "safetensors", "torchscript"))
    p.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into the convolutions")
    kinds = "; ".join(f"{name}: {kind.text}" for name, kind in INPUTS.items())
    p.add_argument(
        "--input",
        choices=tuple(INPUTS),
        help=f"what the onnx/torchscript graph takes; it normalizes inside ({kinds}; "
        f"default {DEFAULT_INPUT})",
    )
    p.add_argument("--out", help="output file (default: beside the model, named by format)")
    p.set_defaults(func=_cmd_export)


_SUFFIX = {"onnx": ".onnx", "safetensors": ".safetensors", "torchscript": ".torchscript.pt"}


def _cmd_export(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from reslab.models import export
    from reslab.models.fold import fold_batchnorm

    if args.format == "safetensors" and args.input:
        raise UserError("--input is for onnx and torchscript: safetensors holds weights only")
    loaded = _load_model(args)
    model, folded = loaded.model, 0
    if args.fold_bn:
        model, folded = fold_batchnorm(model)
    stem = "model-folded" if args.fold_bn else "model-export"
    # Shipped weights live inside the package: their exports go to the working directory.
    folder = Path(".") if args.pretrained else loaded.source.parent
    out = Path(args.out) if args.out else folder / f"{stem}{_SUFFIX[args.format]}"
    data = loaded.data
    note = f" ({folded} BatchNorm layers folded)" if args.fold_bn else ""
    if args.format == "safetensors":
        meta = {"meta": json.dumps({"config": loaded.config.to_dict(), "data": data})}
        export.export_safetensors(model, out, metadata=meta)
    else:  # a graph usable on its own: raw images in, normalized inside (after any folding)
        kind = args.input or export.DEFAULT_INPUT
        net = export.Normalized(model, data["mean"], data["std"], kind)
        meta = export.deployment_metadata(loaded.config.model, data, kind)
        write = export.export_onnx if args.format == "onnx" else export.export_torchscript
        write(net, out, input_shape=(1, data["in_channels"], *data["image_size"]), metadata=meta)
        note += f"; takes {meta['input']}"
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
    from reslab.experiments import BUDGETS, EXPERIMENTS

    p = sub.add_parser("experiment", help="run a grid of runs that tests a published claim")
    p.add_argument("name", help=f"one of {', '.join(EXPERIMENTS)}")
    budgets = "; ".join(f"{b.name}: {b.note}" for b in BUDGETS.values())
    p.add_argument("--budget", default="quick", help=f"{budgets} (default: quick)")
    takes = ", ".join(n for n, e in EXPERIMENTS.items() if e.model)
    p.add_argument(
        "--model",
        help=f"the network to test the claims on, for the experiments whose claims are not tied "
        f"to one architecture ({takes}); default: the experiment's own",
    )
    p.add_argument("--dataset", help="data set instead of the budget's")
    p.add_argument("--data-dir", default="", help="where that data set lives")
    p.add_argument(
        "--seeds", type=int, help="repeats of each run (mean ± std); default: the budget's"
    )
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


def _experiment_command(args: argparse.Namespace) -> str:
    """The command line that makes the same report, for the report to quote."""
    words = ["reslab", "experiment", args.name, "--budget", args.budget]
    for flag in ("model", "dataset", "data_dir", "seeds", "out"):
        value = getattr(args, flag)
        if value:
            words += [f"--{flag.replace('_', '-')}", str(value)]
    return shlex.join(words)


def _cmd_experiment(args: argparse.Namespace) -> int:
    from reslab.experiments import conduct

    report = conduct(
        args.name,
        args.budget,
        args.out,
        args.dataset,
        args.seeds,
        parallel=args.parallel,
        model=args.model,
        data_dir=args.data_dir,
        command=_experiment_command(args),
    )
    for s in report.sections:
        if s.verdict:
            print(f"{s.title}: {s.verdict}")
    print(f"wrote {report.markdown} and {report.html}")
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


class _Stdout(logging.StreamHandler):
    """Log records as plain lines on whatever sys.stdout is when they are emitted (a notebook or
    a test may swap it after the handler was made)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def _configure_logging(verbose: bool) -> None:
    """The library logs through `reslab.*` loggers; the command prints their records plainly."""
    logger = logging.getLogger("reslab")
    if not any(isinstance(h, _Stdout) for h in logger.handlers):
        logger.addHandler(_Stdout())
        logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    from reslab.train.stop import StopRequested

    try:
        args = build_parser().parse_args(argv)
        _configure_logging(getattr(args, "verbose", False))
        return args.func(args)
    except (UserError, DivergenceError, StopRequested) as e:
        from reslab.train.distributed import ERROR_FILE_ENV, report_worker_error

        if isinstance(e, UserError) and ERROR_FILE_ENV in os.environ:
            report_worker_error(str(e), e.exit_code)  # `reslab train --nproc` prints it
        elif os.environ.get("RANK", "0") == "0":  # under torchrun, one rank speaks for all
            print(f"{'' if isinstance(e, StopRequested) else 'error: '}{e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`reslab models | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
