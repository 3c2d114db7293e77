"""Named training recipes (overrides of the config defaults, each with its source), and the
config of `reslab train`: defaults < recipe < TOML file < flags."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from reslab.errors import ConfigError
from reslab.run.config import TrainConfig, build_config, read_toml


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str  # where the settings come from
    overrides: dict[str, object]


DEFAULT_RECIPE = "he2015-cifar"  # what `reslab train` follows when no recipe is named

# What the one-cycle recipes share: Nesterov momentum, weight decay off norms and biases, the
# schedule's length in epochs, channels-last.
ONE_CYCLE = dict(optimizer="nesterov", momentum=0.9, weight_decay=5e-4, no_decay_norm_bias=True,
                 schedule="onecycle", max_steps=0, channels_last=True)  # fmt: skip

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            DEFAULT_RECIPE,
            "He et al. 2015, arXiv:1512.03385, Sec. 4.2: SGD 0.1, momentum 0.9, weight decay 1e-4, "
            "batch 128, 45k/5k train/val split, lr /10 at 32k and 48k of 64k iterations; these "
            "are the config's own defaults",
            {},
        ),
        Recipe(
            "cosine",
            "the common 200-epoch CIFAR recipe with cosine annealing (Loshchilov & Hutter 2017, "
            "arXiv:1608.03983): SGD 0.1, momentum 0.9, weight decay 5e-4, batch 128",
            dict(
                optimizer="sgd",
                lr=0.1,
                momentum=0.9,
                weight_decay=5e-4,
                batch_size=128,
                schedule="cosine",
                epochs=200,
                max_steps=0,
            ),
        ),
        Recipe(
            "cifar-onecycle",
            "the recipe of reslab's pretrained CIFAR-10 weights: 80 epochs of one-cycle lr "
            "(Smith & Topin 2017, arXiv:1708.07120) with Nesterov 0.2, weight decay 5e-4 off "
            "norms and biases, label smoothing 0.1, an EMA of the weights, 45k/5k split (the "
            "length chosen on its validation split, docs/pretrained.md; the shipped weights then "
            "train on all 50k: --val-split 0)",
            dict(
                ONE_CYCLE,
                model="resnet20",
                dataset="cifar10",
                lr=0.2,
                batch_size=128,
                epochs=80,
                label_smoothing=0.1,
                ema=0.999,
                val_split=5000,
            ),
        ),
        Recipe(
            "demo",
            "a short run on the shipped CIFAR-10 sample, minutes on a CPU (`make demo`): "
            "one-cycle lr (Smith & Topin 2017, arXiv:1708.07120), label smoothing 0.1",
            dict(
                ONE_CYCLE,
                model="resnet20",
                dataset="cifar10-sample",
                lr=0.2,
                batch_size=128,
                epochs=15,
                label_smoothing=0.1,
            ),
        ),
        Recipe(
            "fast",
            "the fast-training records for CIFAR-10 (Page 2018, 'How to train your ResNet'; "
            "Jordan 2024, airbench): ResNet-9, batch 512, Nesterov, one-cycle lr, label smoothing "
            "0.2, weights averaged (EMA), flip test-time augmentation; add --precision bf16 "
            "--compile on a GPU",
            dict(
                ONE_CYCLE,
                model="resnet9",
                dataset="cifar10",
                lr=0.4,
                batch_size=512,
                epochs=10,
                label_smoothing=0.2,
                ema=0.99,
                tta=True,
                val_split=0,
            ),
        ),
        Recipe(
            "cpu-budget",
            "reslab's recipe for a wall-clock budget on a CPU (default 10 minutes; docs/speed.md "
            "gives what each choice measured): resnet9_w16, the fast records' ResNet-9 at a "
            "quarter of the width, with their Nesterov and one-cycle lr; test-time "
            "augmentation by flips and 1-pixel translations at the final test; every training "
            "image, no per-epoch validation (its passes would take time from training); in fp32 "
            "so that it holds on any CPU (add --precision auto for bf16 where the CPU has it); "
            "the run sizes itself to --time-budget",
            dict(
                ONE_CYCLE,
                model="resnet9_w16",
                dataset="cifar10",
                lr=0.4,
                batch_size=256,
                epochs=0,
                time_budget=600.0,
                label_smoothing=0.1,
                ema=0.0,
                tta=True,
                tta_shift=1,
                precision="fp32",
                val_split=0,
            ),
        ),
        Recipe(
            "tutorial-resnet18",
            "the setting of many introductory CIFAR-10 tutorials, not a paper's (and not the "
            "benchmarks' baseline pipeline): the 11 M-parameter CIFAR ResNet-18 (3x3 stem, no "
            "max-pool), SGD lr 0.1, momentum 0.9, weight decay 5e-4, batch 128, random crop "
            "(padding 4) and flips, 10 epochs at a constant learning rate, all 50k images",
            dict(
                model="resnet18_cifar",
                dataset="cifar10",
                optimizer="sgd",
                lr=0.1,
                momentum=0.9,
                weight_decay=5e-4,
                batch_size=128,
                schedule="constant",
                epochs=10,
                max_steps=0,
                crop_padding=4,
                flip=True,
                val_split=0,
            ),
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"recipe: unknown value {name!r}; allowed: {', '.join(RECIPES)}")
    return RECIPES[name]


def compose_config(
    recipe: str | None = None,
    file: str | Path | None = None,
    flags: Mapping[str, object] | None = None,
    *,
    options: Iterable[str] = (),
) -> TrainConfig:
    """The config of `reslab train`: defaults < recipe < TOML file < flags. The recipe is
    `recipe`, else the file's `recipe` key, else DEFAULT_RECIPE. `options` are the command
    line's own (out, resume, ...): a file that sets one is told that only a flag sets it."""
    file_values = read_toml(file) if file else {}
    for key in file_values:
        if key in options and key != "recipe":
            raise ConfigError(
                f"{key} (in {file}) is a command-line option, not a config key: pass "
                f"--{key.replace('_', '-')} to reslab train"
            )
    name = recipe or str(file_values.pop("recipe", DEFAULT_RECIPE))
    file_values.pop("recipe", None)
    return build_config(get_recipe(name).overrides, file_values, flags or {})
