"""The typed training config: defaults < recipe < TOML file < command-line flags.

Unknown keys and bad values fail here, before anything runs, with a message that names the key
and what is allowed. The resolved config is saved with every run and inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reslab.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "multistep", "cosine", "onecycle", "linear")
NORMS = ("batchnorm", "batchnorm-scratch", "groupnorm", "none")
SHORTCUTS = ("default", "A", "B", "C", "none")
SHORTCUT_PADS = ("both", "after")
PRECISIONS = ("fp32", "bf16", "fp16")
# Values that configs saved before a key existed meant; a saved config missing the key gets these.
LEGACY_DEFAULTS = {"shortcut_pad": "after"}
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    # -- what to train
    model: str = "resnet20"  # a name from `reslab models`
    norm: str = "batchnorm"  # one of NORMS
    shortcut: str = "default"  # "default" keeps the model's own; else A, B, C or none
    shortcut_pad: str = "both"  # option A: zero channels on both sides, or all "after" (pre-0.2)
    zero_init_residual: bool = False  # start every residual branch at zero (arXiv:1706.02677)
    # -- on what
    dataset: str = "cifar10"  # a registered data set or folder:PATH
    data_dir: str = ""  # where data sets live; "" = $RESLAB_DATA or ~/.cache/reslab
    val_split: int = -1  # images held out of train for validation; -1 = the data set's default
    skip_corrupt: bool = False  # skip unreadable images in folder: data sets instead of failing
    # -- how long
    epochs: int = 0  # passes over the training split; 0 = set by max_steps
    max_steps: int = 64_000  # optimizer steps; 0 = set by epochs; with both, the first to end
    batch_size: int = 128  # images per step, global across processes
    # -- optimizer
    optimizer: str = "sgd"  # one of OPTIMIZERS
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9  # SGD/Nesterov/RMSprop momentum; Adam beta1
    weight_decay: float = 1e-4  # L2 penalty (decoupled for adamw)
    no_decay_norm_bias: bool = False  # exclude norm weights and all biases from weight decay
    # -- schedule
    schedule: str = "multistep"  # one of SCHEDULES
    milestones: list[float] = field(
        default_factory=lambda: [0.5, 0.75]
    )  # multistep, fraction of run
    step_size: float = 0.3  # step: decay every this fraction of the run
    gamma: float = 0.1  # step/multistep decay factor
    warmup_epochs: float = 0.0  # linear warmup from 0, in epochs
    # -- regularization and tricks
    label_smoothing: float = 0.0  # cross-entropy label smoothing, 0..1
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0 = off
    crop_padding: int = 4  # random-crop padding, px; 0 = no crop
    flip: bool = True  # random horizontal flips
    cutout: int = 0  # cutout square side, px; 0 = off
    tta: bool = False  # evaluate on the image and its mirror, averaged
    # -- speed
    precision: str = "fp32"  # one of PRECISIONS; bf16/fp16 autocast, fp16 with a GradScaler
    channels_last: bool = False  # NHWC memory format
    compile: bool = False  # torch.compile the model
    sync_bn: bool = False  # SyncBatchNorm across processes (CUDA only); else stats are averaged
    # -- reproducibility and hardware
    seed: int = 0
    deterministic: bool = False  # deterministic kernels only (bit-identical resume on CPU)
    device: str = "auto"  # one of DEVICES
    threads: int = 0  # CPU threads for torch; 0 = torch's default
    check_every: int = 50  # steps between host reads of the loss (NaN check, progress)

    def validate(self) -> TrainConfig:
        from reslab.data import list_datasets
        from reslab.models import get_spec

        get_spec(self.model)  # an unknown name fails here, naming the closest ones
        if not self.dataset.startswith("folder:") and self.dataset not in list_datasets():
            raise ConfigError(
                f"dataset: unknown value {self.dataset!r}; allowed: "
                f"{', '.join(list_datasets())} or folder:PATH"
            )
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("shortcut", self.shortcut, SHORTCUTS)
        _check_choice("shortcut_pad", self.shortcut_pad, SHORTCUT_PADS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("device", self.device, DEVICES)
        _check(self.lr > 0 and math.isfinite(self.lr), "lr", self.lr, "a number > 0")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        _check(self.epochs >= 0, "epochs", self.epochs, "an integer >= 1 (or 0 with max_steps)")
        _check(self.max_steps >= 0, "max_steps", self.max_steps, "an integer >= 0")
        _check(
            self.epochs > 0 or self.max_steps > 0,
            "epochs",
            self.epochs,
            "an integer >= 1, or set max_steps",
        )
        _check(0 <= self.momentum < 1, "momentum", self.momentum, "a number in [0, 1)")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a number >= 0")
        _check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "[0, 1)")
        _check(0 <= self.ema < 1, "ema", self.ema, "a decay in [0, 1), 0 = off")
        _check(self.warmup_epochs >= 0, "warmup_epochs", self.warmup_epochs, "a number >= 0")
        _check(0 < self.gamma <= 1, "gamma", self.gamma, "a number in (0, 1]")
        _check(0 < self.step_size <= 1, "step_size", self.step_size, "a fraction in (0, 1]")
        _check(
            all(0 < m < 1 for m in self.milestones) and self.milestones == sorted(self.milestones),
            "milestones",
            self.milestones,
            "increasing fractions of the run in (0, 1)",
        )
        _check(self.val_split >= -1, "val_split", self.val_split, "an integer >= 0 (-1 = default)")
        for key in ("crop_padding", "cutout", "threads", "seed"):
            _check(getattr(self, key) >= 0, key, getattr(self, key), "an integer >= 0")
        _check(self.check_every >= 1, "check_every", self.check_every, "an integer >= 1")
        return self

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: bad value {value!r}; expected {allowed}")


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: unknown value {value!r}; allowed: {', '.join(allowed)}")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)


def coerce(key: str, value: object) -> object:
    """Check one key and convert its value to the field's type (ints are accepted as floats)."""
    if key not in FIELDS:
        import difflib

        close = difflib.get_close_matches(key, list(FIELDS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown config key {key!r}{hint}")
    kind = _HINTS[key]
    if isinstance(kind, types.GenericAlias):  # list[float]
        if not isinstance(value, (list, tuple)) or not all(_is_number(v) for v in value):
            raise ConfigError(f"{key}: expected a list of numbers, got {value!r}")
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
    """Merge layers of overrides left to right onto the defaults, then validate.

    A layer that sets only one of epochs and max_steps means that length: the other one, if a
    lower layer set it, is cleared (so `--epochs 300` over a 64k-step recipe trains 300 epochs).
    """
    values: dict[str, object] = {}
    for layer in layers:
        given = {key: coerce(key, value) for key, value in layer.items()}
        for key, other in (("epochs", "max_steps"), ("max_steps", "epochs")):
            if key in given and other not in given:
                values[other] = 0
        values.update(given)
    return TrainConfig(**values).validate()


def saved_config(values: Mapping[str, object], *overrides: Mapping[str, object]) -> TrainConfig:
    """The config of a saved run or checkpoint, read with the meaning it had when written."""
    return build_config(LEGACY_DEFAULTS, values, *overrides)


def field_help() -> dict[str, str]:
    """Each field's trailing comment in the class source, for --help; {} if source is absent."""
    import inspect
    import re

    try:
        source = inspect.getsource(TrainConfig)
    except (OSError, TypeError):
        return {}
    found = re.findall(r"^    (\w+): [^=]+=.*?#\s*(.+)$", source, flags=re.M)
    return {name: text.strip() for name, text in found}


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
    """TOML for a flat mapping of str, bool, int, float and lists of numbers."""
    lines = []
    for key, value in values.items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
