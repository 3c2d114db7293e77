"""The `reslab` command line. Each subcommand parses its flags and hands off to the library;
every error a user can cause ends here as one line on stderr and an exit code.

Parsing needs no torch: the choices and help texts the flags show (and the zoo's table for
`reslab models`) are read from cli.json, which `scripts/gen_docs.py` writes from the code's own
tables (`describe_commands`; a test checks it is current). So `--help`, `--version` and
`reslab models` answer without importing torch; the commands that compute import it then."""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import logging
import os
import shlex
import signal
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

from reslab.errors import DivergenceError, StopRequested, UserError

CLI_FILE = Path(__file__).with_name("cli.json")
FILE, FOLDER = "file", "folder"  # what an output path names (reslab.run.directory's kinds)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line and exit code 2, not a usage dump."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see `{self.prog} --help`)")


@functools.cache
def _tables() -> dict:
    """cli.json: what `describe_commands` says, as stored."""
    return json.loads(CLI_FILE.read_text())


def describe_commands() -> dict:
    """What the command line shows before it computes anything, from the tables that own each
    fact: every config key's flags, type and help, the recipes, splits, devices, export inputs,
    experiments and budgets, and the rows of `reslab models`."""
    from reslab.experiments import BUDGETS, EXPERIMENTS
    from reslab.infer.evaluate import SPLITS
    from reslab.models.export import DEFAULT_INPUT, INPUTS
    from reslab.report.tables import (
        COLUMNS,
        FOOTNOTE,
        WEIGHT_COLUMNS,
        WEIGHT_FOOTNOTE,
        model_rows,
        weight_rows,
    )
    from reslab.run.config import FIELDS, HINTS, describe, flag
    from reslab.run.device import DEVICES
    from reslab.train.recipes import DEFAULT_RECIPE, RECIPES

    config = {}
    for name in FIELDS:
        kind = HINTS[name]
        flags = [flag(name), flag(name, False)] if kind is bool else [flag(name)]
        if typing.get_origin(kind) is list:
            type_name = "list"
        else:  # a key with a reader of its own ("10m") takes text, which the config reads
            type_name = "text" if FIELDS[name].metadata["parse"] else kind.__name__
        config[name] = {"flags": flags, "type": type_name, "help": describe(name)}
    return {
        "config": config,
        "recipes": list(RECIPES),
        "default_recipe": DEFAULT_RECIPE,
        "splits": list(SPLITS),
        "devices": list(DEVICES),
        "inputs": {"kinds": {k: v.text for k, v in INPUTS.items()}, "default": DEFAULT_INPUT},
        "experiments": {n: {"takes_model": bool(e.model)} for n, e in EXPERIMENTS.items()},
        "budgets": {b.name: b.note for b in BUDGETS.values()},
        "models": {"columns": COLUMNS, "rows": model_rows(), "footnote": FOOTNOTE},
        "weights": {"columns": WEIGHT_COLUMNS, "rows": weight_rows(), "footnote": WEIGHT_FOOTNOTE},
    }


def describe_commands_json() -> str:
    """cli.json's content."""
    return json.dumps(describe_commands(), indent=1, ensure_ascii=False) + "\n"


def _count(text: str) -> int:
    """A count of things (processes, seeds, classes shown): an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, not {text!r}")
    return value


# -- reslab models ---------------------------------------------------------------------------


def _cmd_models(args: argparse.Namespace) -> int:
    table = _tables()["weights" if args.weights else "models"]
    rows = [r for r in table["rows"] if fnmatch.fnmatchcase(r[0], args.pattern)]
    if not rows:
        what = "shipped weights match" if args.weights else "registered model matches"
        raise UserError(
            f"no {what} {args.pattern!r}; try `reslab models{' --weights' * args.weights}` for all"
        )
    _print_table([name for name, _ in table["columns"]], rows, table["footnote"],
                 [just == "left" for _, just in table["columns"]])  # fmt: skip
    return 0


def _print_table(
    columns: list[str], rows: list[list[str]], footnote: str, left: list[bool]
) -> None:
    if not sys.stdout.isatty():  # piped: plain aligned text that keeps every name whole
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        for cells in (columns, *rows):
            just = [
                c.ljust(w) if lj else c.rjust(w)
                for c, w, lj in zip(cells, widths, left, strict=True)
            ]
            print("  ".join(just).rstrip())
        print(footnote)
        return
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=None, box=None, header_style="bold")
    for name, lj in zip(columns, left, strict=True):
        shown.add_column(name, justify="left" if lj else "right", no_wrap=True)
    for r in rows:
        shown.add_row(*r)
    console = Console()
    console.print(shown)
    console.print(footnote)


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered networks, or the shipped weights")
    p.add_argument(
        "pattern", nargs="?", default="*", help="shell-style name filter, e.g. 'resnet*'"
    )
    p.add_argument(
        "--weights",
        action="store_true",
        help="list the shipped weights (MODEL.TAG, for --pretrained) with their test error, "
        "length, precision and training time",
    )
    p.set_defaults(func=_cmd_models)


# -- reslab train ----------------------------------------------------------------------------


def _add_train(sub) -> None:
    tables = _tables()
    p = sub.add_parser(
        "train",
        help="train a network; writes a run directory",
        description="Train a network. Settings come from the defaults, then "
        "--recipe, then --config FILE.toml, then these flags.",
    )
    options = []  # the command line's own options, which a config file cannot set

    def option(*names, **kwargs) -> None:
        options.append(p.add_argument(*names, **kwargs).dest)

    option("--config", metavar="FILE.toml", help="TOML file of config keys")
    option(
        "--recipe",
        metavar="NAME",
        help=f"named recipe; one of {', '.join(tables['recipes'])} "
        f"(default: {tables['default_recipe']})",
    )
    option("--out", metavar="RUN_DIR", help="run directory (default runs/MODEL-DATASET-TIME)")
    option("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    option("--force", action="store_true", help="overwrite an existing run directory")
    option("--quiet", action="store_true", help="print only the final result")
    option(
        "--verbose",
        action="store_true",
        help="also print debugging details (the resolved config, where data comes from)",
    )
    option(
        "--nproc",
        type=_count,
        metavar="N",
        help="train with N processes on this machine (torchrun + DDP); --batch-size "
        "stays the global batch",
    )
    for name, key in tables["config"].items():  # every config key is also a flag
        _add_config_flag(p, name, key)
    p.set_defaults(func=_cmd_train, output=_train_output, options=options)


# How a flag reads its value; "text" is read by the config itself (a duration: "10m").
_TYPES = {"int": int, "float": float, "str": str, "text": str}


def _add_config_flag(p: argparse.ArgumentParser, name: str, key: dict) -> None:
    if key["type"] == "bool":  # --KEY and its opposite, as `reslab.run.config.flag` spells them
        on, off = key["flags"]
        p.add_argument(on, dest=name, action="store_true", default=None, help=key["help"])
        p.add_argument(off, dest=name, action="store_false", help=f"undo {on}")
    elif key["type"] == "list":  # of numbers
        p.add_argument(key["flags"][0], dest=name, type=float, nargs="+", help=key["help"])
    else:
        p.add_argument(key["flags"][0], dest=name, type=_TYPES[key["type"]], help=key["help"])


def _train_output(args: argparse.Namespace):
    if args.resume is not None:
        return args.resume, FOLDER
    return (args.out, FOLDER) if args.out is not None else None


def _cmd_train(args: argparse.Namespace) -> int:
    from reslab.run.directory import RunDir
    from reslab.train import compose_config, distributed, fit_restartable, resume
    from reslab.train.runtime import check_runtime

    keys = _tables()["config"]
    flags = {k: v for k, v in vars(args).items() if k in keys and v is not None}
    if args.resume:
        if args.config or args.recipe or args.out is not None or args.force:
            raise UserError(
                "--resume takes its settings from the checkpoint; drop --config, "
                "--recipe, --out and --force"
            )
    else:
        config = compose_config(args.recipe, args.config, flags, options=args.options)
    if args.nproc is not None:
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
        out = args.out_path or RunDir.default(config.model, config.dataset).path
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


_BESIDE = (
    "default: beside the model (a run directory: inside it); for --pretrained NAME, "
    "runs/pretrained/NAME/ under the current directory"
)


def _beside_model(args: argparse.Namespace):
    """Where a command writes what it makes of a model when not told (`_BESIDE` says it)."""
    from pathlib import Path

    from reslab.run.directory import pretrained_location

    if (args.model is None) == (args.pretrained is None):
        raise UserError("give one of a model (run directory or file) and --pretrained NAME")
    if args.pretrained:
        return pretrained_location(args.pretrained)
    path = Path(args.model)
    return path if path.is_dir() else path.parent


def _load_model(args: argparse.Namespace):
    from reslab.infer import load, load_pretrained

    return load_pretrained(args.pretrained) if args.pretrained else load(args.model)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained model: top-1/top-5, per class, confusion")
    _add_model_args(p)
    p.add_argument("--dataset", help="data set to evaluate on (default: the one it trained on)")
    p.add_argument("--data-dir", help="where data sets live")
    p.add_argument(
        "--split", choices=_tables()["splits"], default="test",
        help="test, or val: the run's own hold-out",
    )  # fmt: skip
    p.add_argument("--tta", action="store_true", help="average with the mirrored image")
    _add_config_flag(p, "tta_shift", _tables()["config"]["tta_shift"])
    p.add_argument(
        "--augmented",
        action="store_true",
        help="leave the training augmentation on (the model's random crops and flips, from a "
        "fixed seed), as some tutorials evaluate: for comparison only, not a score to report",
    )
    p.add_argument(
        "--out",
        help="folder for the results (eval.json; eval.SPLIT[-tta[-shiftN]][-augmented].json for "
        f"other splits, --tta, --tta-shift N or --augmented) and the confusion matrix; {_BESIDE}",
    )
    p.add_argument(
        "--device", default="auto", choices=_tables()["devices"], help="where to evaluate"
    )
    p.set_defaults(func=_cmd_eval, output=_eval_output)


def _eval_output(args: argparse.Namespace):
    return (args.out, FOLDER) if args.out is not None else (_beside_model(args), FOLDER)


def _cmd_eval(args: argparse.Namespace) -> int:
    from reslab.infer import evaluate
    from reslab.io import plural
    from reslab.report.evaluation import write_evaluation
    from reslab.run.config import check_tta

    shift = args.tta_shift or 0
    check_tta(args.tta, shift)  # before the model loads
    loaded = _load_model(args)
    ev = evaluate(
        loaded, args.dataset, args.split, args.tta, args.data_dir, args.device, args.augmented,
        shift,
    )  # fmt: skip
    json_path, png_path = write_evaluation(ev, args.out_path)
    top5 = f"  top-5 {100 * ev.top5:.2f}%" if len(ev.classes) > 5 else ""
    tta = f" with TTA (flips, {shift}-pixel shifts)" if shift else " with TTA" * ev.tta
    print(
        f"{args.split}{tta}"
        f"{' with the training augmentation on' if ev.augmented else ''}: "
        f"top-1 {100 * ev.top1:.2f}%{top5}  "
        f"loss {ev.loss:.4f}  ({plural(ev.count, 'image')})"
    )
    if ev.same_data is not None:
        which = "test split" if args.split == "test" else "training split (the hold-out's source)"
        print(
            f"{ev.dataset}: {'the same' if ev.same_data else 'NOT the same'} images as the "
            f"model's {which}, by data checksum"
        )
    for name, acc in ev.per_class_accuracy().items():
        print(f"  {name:<16} {'-' if acc is None else f'{100 * acc:.1f}%'}")
    print(f"wrote {json_path} and {png_path}")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify image files",
        usage="reslab predict (MODEL | --pretrained NAME) IMAGE [IMAGE ...] [options]",
    )
    p.add_argument(
        "inputs", nargs="*", metavar="MODEL IMAGE", help=f"the model ({_MODEL_HELP}), then images"
    )
    p.add_argument(
        "--pretrained",
        metavar="NAME",
        help="shipped weights instead of a model file: resnet20 or resnet20.TAG; then every "
        "argument is an image",
    )
    p.add_argument("--top-k", type=_count, default=3, help="classes to show per image")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--device", default="auto", choices=_tables()["devices"], help="where to run the model"
    )
    p.set_defaults(func=_cmd_predict)


def _cmd_predict(args: argparse.Namespace) -> int:
    import json

    from reslab.infer import predict

    if not args.inputs:
        raise UserError(
            "predict: no image files given"
            if args.pretrained
            else "predict: give a model (or --pretrained NAME) and one or more images"
        )
    args.model, images = (
        (None, args.inputs) if args.pretrained else (args.inputs[0], args.inputs[1:])
    )
    if not images:
        raise UserError(f"predict: no image files given after the model {args.model}")
    results = predict(_load_model(args), images, args.top_k, args.device)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return 0
    for r in results:
        guesses = ", ".join(f"{name} {100 * prob:.1f}%" for name, prob in r.top)
        print(f"{r.image}: {guesses}")
    return 0


_SUFFIX = {"onnx": ".onnx", "safetensors": ".safetensors", "torchscript": ".torchscript.pt"}


def _add_export(sub) -> None:
    inputs = _tables()["inputs"]
    p = sub.add_parser("export", help="export a trained model: ONNX, TorchScript or safetensors")
    _add_model_args(p)
    p.add_argument("--format", required=True, choices=tuple(_SUFFIX))
    p.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into the convolutions")
    kinds = "; ".join(f"{name}: {text}" for name, text in inputs["kinds"].items())
    p.add_argument(
        "--input",
        choices=tuple(inputs["kinds"]),
        help=f"what the onnx/torchscript graph takes; it normalizes inside ({kinds}; "
        f"default {inputs['default']})",
    )
    p.add_argument(
        "--out",
        help="output file (its folder must exist); named model-export or model-folded with the "
        f"format's suffix when not given; {_BESIDE}",
    )
    p.set_defaults(func=_cmd_export, output=_export_output)


def _export_output(args: argparse.Namespace):
    if args.out is not None:
        return args.out, FILE
    stem = "model-folded" if args.fold_bn else "model-export"
    return _beside_model(args) / f"{stem}{_SUFFIX[args.format]}", FILE


def _cmd_export(args: argparse.Namespace) -> int:
    import json

    from reslab.models import export
    from reslab.models.fold import fold_batchnorm

    if args.format == "safetensors" and args.input:
        raise UserError("--input is for onnx and torchscript: safetensors holds weights only")
    loaded = _load_model(args)
    model, folded = loaded.model, 0
    if args.fold_bn:
        model, folded = fold_batchnorm(model)
    out, data = args.out_path, loaded.data
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
    p.set_defaults(func=_cmd_report, output=_report_output)


def _report_output(args: argparse.Namespace):
    if args.out is not None:
        return args.out, FOLDER
    return (args.runs[0] if len(args.runs) == 1 else "report"), FOLDER


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from reslab.report.markdown import write_report

    path = write_report([Path(r) for r in args.runs], args.out_path, title=args.title)
    print(f"wrote {path}")
    return 0


# -- reslab experiment -------------------------------------------------------------------------


def _add_experiment(sub) -> None:
    tables = _tables()
    p = sub.add_parser("experiment", help="run a grid of runs that tests a published claim")
    p.add_argument("name", help=f"one of {', '.join(tables['experiments'])}")
    budgets = "; ".join(f"{name}: {note}" for name, note in tables["budgets"].items())
    p.add_argument("--budget", default="quick", help=f"{budgets} (default: quick)")
    takes = ", ".join(n for n, e in tables["experiments"].items() if e["takes_model"])
    p.add_argument(
        "--model",
        help=f"the network to test the claims on, for the experiments whose claims are not tied "
        f"to one architecture ({takes}); default: the experiment's own",
    )
    p.add_argument("--dataset", help="data set instead of the budget's")
    p.add_argument("--data-dir", default="", help="where that data set lives")
    p.add_argument(
        "--seeds", type=_count, help="repeats of each run (mean ± std); default: the budget's"
    )
    p.add_argument(
        "--more-seeds",
        type=_count,
        metavar="N",
        help="then N seeds in all for the runs of each verdict the grid leaves open "
        "(inconclusive at this budget): each arm at the rate chosen on the grid's own seeds, "
        "which the added seeds cannot move; must exceed --seeds",
    )
    p.add_argument(
        "--epochs",
        type=_count,
        metavar="N",
        help="train the grid's runs for N epochs instead of the budget's (the same grid run "
        "longer, for curves the budget leaves unsettled); the report says so",
    )
    p.add_argument(
        "--out",
        help="output folder (default runs/experiments/NAME-BUDGET, NAME-BUDGET-Nepochs with "
        "--epochs)",
    )
    p.add_argument(
        "--parallel",
        type=_count,
        default=1,
        metavar="N",
        help="run N runs of the grid side by side, each its own process (one per GPU "
        "when there are GPUs; else the CPU cores are shared)",
    )
    p.set_defaults(
        func=_cmd_experiment, output=lambda a: None if a.out is None else (a.out, FOLDER)
    )


def _experiment_command(args: argparse.Namespace) -> str:
    """The command line that makes the same report, for the report to quote."""
    words = ["reslab", "experiment", args.name, "--budget", args.budget]
    for flag in ("model", "dataset", "data_dir", "seeds", "more_seeds", "epochs", "out"):
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
        more_seeds=args.more_seeds or 0,
        epochs=args.epochs,
    )
    for s in report.sections:
        if s.verdict:
            print(f"{s.title}: {s.verdict}")
    print(f"wrote {report.markdown} and {report.html}")
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    # argparse reports a missing command before an unknown option ahead of it (`reslab
    # --bogus`): name the option, which is what the user typed wrong.
    leading = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    unknown = [a for a in argv[:leading] if a not in ("-h", "--help", "--version")]
    if unknown:
        raise UserError(
            f"reslab: unrecognized arguments: {' '.join(unknown)} (see `reslab --help`)"
        )
    return build_parser().parse_args(argv)


def _check_output(args: argparse.Namespace) -> Path | None:
    """Where the command will write, checked before any work: each command says where
    (`output` in its defaults: (path, FILE or FOLDER), or None where it decides later)."""
    where = args.output(args) if getattr(args, "output", None) else None
    if where is None:
        return None
    from reslab.run.directory import check_output

    path, kind = where
    given = getattr(args, "out", None) is not None or getattr(args, "resume", None) is not None
    what = "--out" if getattr(args, "out", None) is not None else "--resume" if given else "output"
    return check_output(path, kind, what, new_folders=not given)


def build_parser() -> argparse.ArgumentParser:
    import reslab

    parser = _Parser(prog="reslab", description=reslab.__doc__.split("\n")[0])
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


def run() -> typing.NoReturn:
    """The `reslab` command: `main`'s exit code as the process's. A Ctrl-C that lands after `main`
    has returned (the second of two presses, when the first stopped a run at a step's end and its
    checkpoint is saved) has nothing left to interrupt: the process exits as `main` said, 130 when
    the signal arrived before `main` could say it, never with a traceback."""
    # No Python-level call between `main`'s return and the ignore below (a `with` block's
    # `__exit__` would be one): a KeyboardInterrupt can be raised at such a call.
    code = 130  # a Ctrl-C that escapes `main` leaves this
    try:  # noqa: SIM105 (not contextlib.suppress: see above)
        code = main()
    except KeyboardInterrupt:
        pass
    while True:  # exiting now: later presses are ignored; one that lands first is caught here
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            break
        except KeyboardInterrupt:
            continue
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parse(list(sys.argv[1:] if argv is None else argv))
        _configure_logging(getattr(args, "verbose", False))
        args.out_path = _check_output(args)
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
    except OSError as e:
        if e.filename is None:
            raise
        # A file or folder the command was pointed at and the system refused (a name too
        # long, a file where a folder must be): the user's to fix, said in one line.
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
