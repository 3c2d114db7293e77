"""The typed training config: what every key of a run means, its default, and what it allows.

Each field carries its own help, its allowed values (read from the table that implements them:
the optimizer table, the schedule table, the norm table...) or its range; the CLI flags, their
--help and the docs' table are generated from these fields. Unknown keys and bad values fail
here, before anything runs, with a message that names the key and what is allowed. The resolved
config is saved with every run (config.toml) and inside every checkpoint. Layering (defaults <
recipe < file < flags) is `reslab.train.recipes.compose_config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from reslab.errors import ConfigError
from reslab.models.layers import NORMS, PAD_MODES, SHORTCUTS
from reslab.run import length
from reslab.run.device import DEVICES, PRECISION_CHOICES
from reslab.run.optim import OPTIMIZERS
from reslab.run.schedule import SCHEDULES

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# Values that configs saved before a key existed meant; a saved config missing the key gets these.
LEGACY_DEFAULTS = {"shortcut_pad": "after"}


def _datasets() -> list[str]:
    from reslab.data import list_datasets

    return [*list_datasets(), "folder:PATH"]


def _models() -> list[str]:
    from reslab.models import list_models

    return list_models()


@dataclass(frozen=True)
class Check:
    """A range check on a number: `ok(value)` must hold; `expected` says what is allowed."""

    ok: Callable[[float], bool]
    expected: str


def _bound(x: float) -> str:
    """A bound as a reader writes it: 1e6 rather than 1000000, 1,048,576 rather than 1.04858e+06."""
    if x == int(x) and abs(x) >= 10**5:
        power = math.log10(abs(x))
        return f"{'-' if x < 0 else ''}1e{power:.0f}" if power == int(power) else f"{int(x):,}"
    return f"{x:g}"


def between(
    low: float,
    high: float,
    what: str = "an integer",
    *,
    open_low: bool = False,
    open_high: bool = False,
    note: str = "",
) -> Check:
    """A value in [low, high] (or open at either end), checked and described from the same
    bounds. Every number has an upper bound too, so that an absurd value (1e300 warmup epochs)
    is refused here rather than overflowing hours later."""

    def ok(v: float) -> bool:
        return (low < v if open_low else low <= v) and (v < high if open_high else v <= high)

    interval = f"{'(' if open_low else '['}{_bound(low)}, {_bound(high)}{')' if open_high else ']'}"
    return Check(ok, f"{what} in {interval}" + (f"; {note}" if note else ""))


UNIT = between(0, 1, "a number", open_high=True)

_UNITS = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, "": 1.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|min|m|s|)")


def parse_duration(text: str | float | int) -> float:
    """Seconds in "90s", "10m", "1h", "1h30m", "2.5m" or a plain number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip().lower()
    if s.startswith("-"):
        raise ConfigError(
            f"time_budget: {text!r} is negative; give a duration of 0 (off) or more, e.g. 10m"
        )
    parts, pos = [], 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m or not m.group(0):
            parts = []
            break
        parts.append(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
        while pos < len(s) and s[pos] == " ":
            pos += 1
    if not parts:
        raise ConfigError(
            f"time_budget: cannot read {text!r} as a duration; write e.g. 90s, 10m, 1h30m or a "
            "number of seconds"
        )
    return sum(parts)


def option(
    default,
    help: str,
    *,
    choices=None,
    check: Check | None = None,
    listed: bool = True,
    parse: Callable[[str], object] | None = None,
):
    """A config field: its default, its help text, and either its allowed values (an iterable,
    or a function returning one, for tables filled at import) or a range check; `parse` reads
    the field from text (flags, TOML strings). Mutable defaults (lists) are copied per config."""
    metadata = {"help": help, "choices": choices, "check": check, "listed": listed, "parse": parse}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def choices_of(f: dataclasses.Field) -> list[str] | None:
    choices = f.metadata.get("choices")
    if choices is None:
        return None
    return list(choices() if callable(choices) else choices)


@dataclass
class TrainConfig:
    # -- what to train
    model: str = option("resnet20", "a network from `reslab models`", choices=_models, listed=False)
    norm: str = option("batchnorm", "normalization layer", choices=NORMS)
    shortcut: str = option(
        "default",
        "skip path: 'default' keeps the model's own (A for CIFAR ResNets, B for ImageNet ones)",
        choices=lambda: ["default", *SHORTCUTS],
    )
    shortcut_pad: str = option(
        "both",
        "where option A's zero channels go: both sides, or all after (runs before reslab 0.2)",
        choices=PAD_MODES,
    )
    zero_init_residual: bool = option(
        False, "start every residual branch at zero (Goyal et al. 2017, arXiv:1706.02677)"
    )
    init: str = option(
        "",
        "start from trained weights, not random ones: a run directory, checkpoint or weights "
        "file, or pretrained[:NAME] for shipped weights (NAME as `reslab eval --pretrained` takes "
        "it; the model's default tag if left out); the classifier starts afresh where the classes "
        "differ; '' = random",
    )
    # -- on what
    dataset: str = option("cifar10", "a data set, or folder:PATH", choices=_datasets)
    data_dir: str = option("", "where data sets live; '' means $RESLAB_DATA or ~/.cache/reslab")
    val_split: int = option(
        -1,
        "images held out of train for validation",
        check=between(-1, 2**31 - 1, note="-1 for the data set's default"),
    )
    skip_corrupt: bool = option(False, "skip unreadable images in folder: data sets, not fail")
    # -- how long
    epochs: int = option(
        0,
        "passes over the training split",
        check=between(0, 10**6, note="0 lets max_steps (or a time budget) set the length"),
    )
    max_steps: int = option(
        64_000,
        "optimizer steps; with epochs too, the first to end",
        check=between(0, 10**9, note="0 lets epochs set the length"),
    )
    time_budget: float = option(
        0.0,
        "wall time for the whole command (90s, 10m, 1h30m or seconds): the run sizes itself and "
        "lands at the end of its schedule within it; with epochs/max_steps, the first to end; "
        "0 = off",
        check=between(0, 10**7, "a duration in seconds"),
        parse=parse_duration,
    )
    batch_size: int = option(
        128, "images per step, global across processes", check=between(1, 2**20)
    )
    # -- optimizer
    optimizer: str = option("sgd", "the optimizer", choices=OPTIMIZERS)
    lr: float = option(0.1, "peak learning rate", check=between(0, 1e6, "a number", open_low=True))
    muon_lr: float = option(
        0.02,
        "muon: peak learning rate of the hidden conv and linear weights, which Muon updates; lr "
        "is then that of the rest (first layer, classifier, norms, biases: Nesterov SGD)",
        check=between(0, 1e6, "a number", open_low=True),
    )
    momentum: float = option(0.9, "SGD/Nesterov/RMSprop/Muon momentum; Adam's beta1", check=UNIT)
    weight_decay: float = option(
        1e-4,
        "L2 penalty (decoupled for adamw, and for the weights Muon updates)",
        check=between(0, 1, "a number"),
    )
    no_decay_norm_bias: bool = option(False, "keep norm weights and all biases out of weight decay")
    # -- schedule
    schedule: str = option("multistep", "learning-rate schedule", choices=SCHEDULES)
    milestones: list[float] = option(
        [0.5, 0.75], "multistep: when the lr drops, as fractions of the run, increasing in (0, 1)"
    )
    step_size: float = option(
        0.3,
        "step: decay every this fraction of the run",
        check=between(0, 1, "a fraction", open_low=True),
    )
    gamma: float = option(
        0.1,
        "step/multistep: lr factor at each drop",
        check=between(0, 1, "a number", open_low=True),
    )
    warmup_epochs: float = option(
        0.0,
        "linear warmup from 0, in epochs",
        check=between(0, 10**4, "a number"),
    )
    # -- regularization and tricks
    label_smoothing: float = option(0.0, "cross-entropy label smoothing", check=UNIT)
    ema: float = option(
        0.0,
        "decay of an exponential moving average of the weights (and BN statistics)",
        check=between(0, 1, "a decay", open_high=True, note="0 = off"),
    )
    crop_padding: int = option(
        4, "random-crop padding, px; 0 turns cropping off", check=between(0, 1024)
    )
    flip: bool = option(True, "random horizontal flips")
    cutout: int = option(0, "cutout square side, px; 0 turns cutout off", check=between(0, 4096))
    progressive: list[int] = option(
        [],
        "progressive resizing: train on the whole images scaled down to these sizes (px, "
        "increasing, below the data's own), each for an equal part of the run, then on the full "
        "size for the last part (16 24: thirds at 16, 24 and full size; bilinear, antialiased); "
        "evaluation is always at full size; [] = off",
    )
    tta: bool = option(False, "evaluate on the image and its mirror, averaged")
    tta_shift: int = option(
        0,
        "with tta, also average over the image and its mirror each translated this many px "
        "up-left and down-right, the edge reflected: 6 views, the unshifted pair weighing half "
        "(airbench's TTA, which shifts 1 px); 0 = flips only; needs tta",
        check=between(0, 8),
    )
    # -- speed
    precision: str = option(
        "fp32",
        "autocast precision (fp16 with a gradient scaler, CUDA only); auto: bf16 on CUDA and on "
        "CPUs with AVX512-BF16 or AMX, else fp32 (the run's config records the one chosen)",
        choices=PRECISION_CHOICES,
    )
    channels_last: bool = option(False, "NHWC memory format")
    compile: bool = option(False, "torch.compile the model (eager if compiling fails)")
    sync_bn: bool = option(
        False, "SyncBatchNorm across processes (CUDA only); else statistics are averaged"
    )
    # -- reproducibility and hardware
    seed: int = option(
        0, "seed of weights, data order and augmentation", check=between(0, 2**63 - 1)
    )
    deterministic: bool = option(False, "deterministic kernels only (bit-identical resume)")
    device: str = option("auto", "where to train; auto = CUDA if available", choices=DEVICES)
    threads: int = option(
        0, "CPU threads for torch; 0 keeps torch's default", check=between(0, 4096)
    )
    check_every: int = option(
        50, "steps between host reads of the loss (NaN check, progress)", check=between(1, 10**6)
    )
    tensorboard: bool = option(
        False, "write TensorBoard events to RUN_DIR/tensorboard (pip install reslab[tensorboard])"
    )
    checkpoint_every: float = option(
        600.0,
        "seconds between checkpoints inside an epoch (besides the one at each epoch's end), so "
        "a killed run loses at most this much; 0 = at epoch ends only",
        check=between(0, 10**7, "a number of seconds"),
    )

    def validate(self) -> TrainConfig:
        from reslab.data import list_datasets
        from reslab.models import get_spec

        get_spec(self.model)  # an unknown name fails here, naming the closest ones
        if not self.dataset.startswith("folder:") and self.dataset not in list_datasets():
            raise ConfigError(
                f"dataset: unknown value {self.dataset!r}; allowed: "
                f"{', '.join(list_datasets())} or folder:PATH"
            )
        for f in dataclasses.fields(self):
            value, choices, check = getattr(self, f.name), choices_of(f), f.metadata["check"]
            if choices is not None and f.name not in ("model", "dataset"):
                _check_choice(f.name, value, choices)
            if isinstance(value, float):
                _check(math.isfinite(value), f.name, value, "a finite number")
            if check is not None:
                _check(check.ok(value), f.name, value, check.expected)
        length.check_limits(self)
        check_tta(self.tta, self.tta_shift)
        _check(
            all(4 <= v <= 4096 for v in self.progressive)
            and all(a < b for a, b in zip(self.progressive, self.progressive[1:], strict=False)),
            "progressive",
            self.progressive,
            "increasing image sizes in [4, 4096] px",
        )
        ms = self.milestones
        _check(
            all(0 < m < 1 for m in ms) and all(a < b for a, b in zip(ms, ms[1:], strict=False)),
            "milestones",
            self.milestones,
            "increasing fractions of the run in (0, 1)",
        )
        return self

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: bad value {value!r}; expected {allowed}")


def check_tta(tta: bool, tta_shift: int) -> None:
    """The TTA protocol, as the config and `reslab eval` both take it. A shift without tta is
    refused rather than read as tta on, so that a saved config never says tta = false of a run
    whose evaluation averaged views."""
    tta_shift = coerce("tta_shift", tta_shift)
    check = FIELDS["tta_shift"].metadata["check"]
    _check(check.ok(tta_shift), "tta_shift", tta_shift, check.expected)
    if tta_shift and not tta:
        raise ConfigError(
            f"tta_shift: {tta_shift} shifts the TTA views, but tta is off; add --tta "
            "(tta = true in a config file) or leave tta_shift at 0"
        )


def _check_choice(key: str, value: str, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{key}: unknown value {value!r}; allowed: {', '.join(allowed)}")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
HINTS = typing.get_type_hints(TrainConfig)


def default_of(name: str) -> object:
    f = FIELDS[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def flag(name: str, value: bool = True) -> str:
    """The command-line flag of config key `name`: batch_size -> --batch-size. A bool key takes
    --KEY for true and --no-KEY for false, except a key that already says no (no_decay_norm_bias:
    --no-decay-norm-bias for true, --decay-norm-bias for false)."""
    dashed = name.replace("_", "-")
    if HINTS.get(name) is not bool or value:
        return f"--{dashed}"
    return f"--{dashed[3:]}" if name.startswith("no_") else f"--no-{dashed}"


def as_flags(values: Mapping[str, object]) -> list[str]:
    """Config values as the `reslab train` flags that set them."""
    words: list[str] = []
    for name, value in values.items():
        if isinstance(value, bool):
            words.append(flag(name, value))
        elif isinstance(value, (list, tuple)):
            words += [flag(name), *map(str, value)]
        else:
            words += [flag(name), str(value)]
    return words


def describe(name: str) -> str:
    """A key's help with its allowed values or range and its default: for --help and the docs."""
    f = FIELDS[name]
    text = f.metadata["help"]
    choices, check = choices_of(f), f.metadata["check"]
    if choices is not None and f.metadata["listed"]:
        text += f"; one of {', '.join(choices)}"
    elif check is not None:
        text += f"; {check.expected}"
    default = default_of(name)
    shown = default if isinstance(default, str) and default else repr(default)
    return f"{text} (default: {shown})"


def coerce(key: str, value: object) -> object:
    """Check one key and convert its value to the field's type (ints are accepted as floats)."""
    if key not in FIELDS:
        close = difflib.get_close_matches(key, list(FIELDS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown config key {key!r}{hint}")
    kind = HINTS[key]
    parse = FIELDS[key].metadata.get("parse")
    if parse is not None and isinstance(value, str):
        return parse(value)
    if isinstance(kind, types.GenericAlias):  # list[float], list[int]
        if not isinstance(value, (list, tuple)) or not all(_is_number(v) for v in value):
            raise ConfigError(f"{key}: expected a list of numbers, got {value!r}")
        if typing.get_args(kind)[0] is int:  # flags arrive as floats: 16.0 is 16, 16.5 no
            if not all(float(v).is_integer() for v in value):
                raise ConfigError(f"{key}: expected a list of whole numbers, got {value!r}")
            return [int(v) for v in value]
        return [float(v) for v in value]
    if kind is float and _is_number(value):
        return float(value)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r} ({type(value).__name__})")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def build_config(*layers: Mapping[str, object]) -> TrainConfig:
    """Merge layers of overrides left to right onto the defaults, then validate (how a layer
    that sets one of the length keys treats the other: `reslab.run.length.merge`)."""
    values: dict[str, object] = {}
    for layer in layers:
        length.merge(values, {key: coerce(key, value) for key, value in layer.items()})
    return TrainConfig(**values).validate()


def saved_config(values: Mapping[str, object], *overrides: Mapping[str, object]) -> TrainConfig:
    """The config of a saved run or checkpoint, read with the meaning it had when written."""
    return build_config(LEGACY_DEFAULTS, values, *overrides)


def read_toml(path: str | Path) -> dict[str, object]:
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    # A [train] table is accepted too, so one file can hold other sections later.
    return dict(data.get("train", data)) if isinstance(data.get("train"), dict) else data


def to_toml(values: Mapping[str, object]) -> str:
    """A config as TOML text, as config.toml holds it."""
    return tomli_w.dumps(dict(values))
