"""Named training recipes: overrides of the config defaults, each with its source."""

from __future__ import annotations

from dataclasses import dataclass

from reslab.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str  # where the settings come from
    overrides: dict[str, object]


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "he2015-cifar",
            "He et al. 2015, arXiv:1512.03385, Sec. 4.2: SGD 0.1, momentum 0.9, weight decay 1e-4, "
            "batch 128, 45k/5k train/val split, lr /10 at 32k and 48k of 64k iterations",
            dict(
                model="resnet20",
                dataset="cifar10",
                optimizer="sgd",
                lr=0.1,
                momentum=0.9,
                weight_decay=1e-4,
                batch_size=128,
                schedule="multistep",
                milestones=[0.5, 0.75],
                gamma=0.1,
                max_steps=64_000,
                epochs=0,
            ),
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
            "norms and biases, label smoothing 0.1, an EMA of the weights, 45k/5k split (80 "
            "epochs beat 60 on its validation split; the shipped weights then train on all "
            "50k: --val-split 0)",
            dict(
                model="resnet20",
                dataset="cifar10",
                optimizer="nesterov",
                lr=0.2,
                momentum=0.9,
                weight_decay=5e-4,
                no_decay_norm_bias=True,
                batch_size=128,
                schedule="onecycle",
                epochs=80,
                max_steps=0,
                label_smoothing=0.1,
                ema=0.999,
                val_split=5000,
                channels_last=True,
            ),
        ),
        Recipe(
            "quick",
            "a short run on the shipped CIFAR-10 sample (about two minutes on 2 CPU cores): "
            "one-cycle lr (Smith & Topin 2017, arXiv:1708.07120), label smoothing 0.1",
            dict(
                model="resnet20",
                dataset="cifar10-sample",
                optimizer="nesterov",
                lr=0.2,
                momentum=0.9,
                weight_decay=5e-4,
                batch_size=128,
                schedule="onecycle",
                epochs=15,
                max_steps=0,
                label_smoothing=0.1,
                no_decay_norm_bias=True,
                channels_last=True,
            ),
        ),
        Recipe(
            "fast",
            "the fast-training records for CIFAR-10 (Page 2018, 'How to train your ResNet'; "
            "Jordan 2024, airbench): ResNet-9, batch 512, Nesterov, one-cycle lr, label smoothing "
            "0.2, weights averaged (EMA), flip test-time augmentation; add --precision bf16 "
            "--compile on a GPU",
            dict(
                model="resnet9",
                dataset="cifar10",
                optimizer="nesterov",
                lr=0.4,
                momentum=0.9,
                weight_decay=5e-4,
                no_decay_norm_bias=True,
                batch_size=512,
                schedule="onecycle",
                epochs=10,
                max_steps=0,
                label_smoothing=0.2,
                ema=0.99,
                tta=True,
                channels_last=True,
                val_split=0,
            ),
        ),
        Recipe(
            "cpu-budget",
            "reslab's recipe for a wall-clock budget on a CPU (default 10 minutes; docs/speed.md "
            "gives what each choice measured): resnet9_w16, the fast records' ResNet-9 at a "
            "quarter of the width, with their Nesterov, one-cycle lr and flip test-time "
            "augmentation, in fp32 so that it holds on any CPU; the run sizes itself to "
            "--time-budget",
            dict(
                model="resnet9_w16",
                dataset="cifar10",
                optimizer="nesterov",
                lr=0.4,
                momentum=0.9,
                weight_decay=5e-4,
                no_decay_norm_bias=True,
                batch_size=256,
                schedule="onecycle",
                epochs=0,
                max_steps=0,
                time_budget=600.0,
                label_smoothing=0.1,
                ema=0.0,
                tta=True,
                channels_last=True,
                precision="fp32",
                val_split=2000,
            ),
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"recipe: unknown value {name!r}; allowed: {', '.join(RECIPES)}")
    return RECIPES[name]
