"""Every registered network, as data. A new variant is a new entry here, not a new class."""

from __future__ import annotations

from reslab.models.registry import ModelSpec, register
from reslab.models.resnet9 import ResNet9

IMAGENET = (3, 224, 224)
CIFAR = (3, 32, 32)
TV_REF = "torchvision IMAGENET1K_V1 weights, single 224 crop"
HE2015 = "He et al. 2015, arXiv:1512.03385, Table 6 (CIFAR-10)"
HE2016 = "He et al. 2016, arXiv:1603.05027, Table 3 (CIFAR-10)"

# ImageNet layout: 7x7 stem, max-pool, four stages of 64..512 (He et al. 2015, Table 1).
_IMAGENET = {
    "resnet18": ("basic", (2, 2, 2, 2), 30.24),
    "resnet34": ("basic", (3, 4, 6, 3), 26.69),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 23.87),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 22.63),
    "resnet152": ("bottleneck", (3, 8, 36, 3), 21.69),
    "resnet200": ("bottleneck", (3, 24, 36, 3), None),
}
for _name, (_block, _layers, _err) in _IMAGENET.items():
    register(
        ModelSpec(
            _name,
            "imagenet",
            dict(block=_block, layers=_layers, shortcut="B"),
            1000,
            IMAGENET,
            _err,
            TV_REF if _err is not None else None,
        )
    )
for _depth in (18, 34):
    _block, _layers, _ = _IMAGENET[f"resnet{_depth}"]
    register(
        ModelSpec(
            f"plain{_depth}",
            "imagenet-plain",
            dict(block=_block, layers=_layers, shortcut="none"),
            1000,
            IMAGENET,
        )
    )

# CIFAR layout: 3x3 stem, three stages of 16/32/64 with n blocks each, 6n+2 layers, option A.
_CIFAR_ERRORS = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}


def _cifar_arch(depth: int, shortcut: str) -> dict:
    n = (depth - 2) // 6
    return dict(
        block="basic",
        layers=(n, n, n),
        widths=(16, 32, 64),
        stem="cifar",
        stem_width=16,
        shortcut=shortcut,
    )


for _depth, _err in _CIFAR_ERRORS.items():
    register(
        ModelSpec(f"resnet{_depth}", "cifar", _cifar_arch(_depth, "A"), 10, CIFAR, _err, HE2015)
    )
for _depth in (20, 32, 44, 56, 110):
    register(ModelSpec(f"plain{_depth}", "cifar-plain", _cifar_arch(_depth, "none"), 10, CIFAR))

# Variants of resnet20 for the placement experiment: same depth, widths and option A shortcuts.
register(
    ModelSpec(
        "preact_resnet20",
        "cifar-preact",
        {**_cifar_arch(20, "A"), "block": "preact_basic"},
        10,
        CIFAR,
    )
)
register(
    ModelSpec(
        "resnet20_relu_bn", "cifar", {**_cifar_arch(20, "A"), "block": "basic_relu_bn"}, 10, CIFAR
    )
)

# Pre-activation CIFAR nets (He et al. 2016), with projection shortcuts where the shape changes.
_PREACT = {
    "preact_resnet110": ("preact_basic", 18, 6.37),
    "preact_resnet164": ("preact_bottleneck", 18, 5.46),
    "preact_resnet1001": ("preact_bottleneck", 111, 4.92),
}
for _name, (_block, _n, _err) in _PREACT.items():
    _arch = dict(
        block=_block,
        layers=(_n, _n, _n),
        widths=(16, 32, 64),
        stem="cifar",
        stem_width=16,
        shortcut="B",
    )
    register(ModelSpec(_name, "cifar-preact", _arch, 10, CIFAR, _err, HE2016))

# The ImageNet layout adapted to 32x32 inputs: 3x3 stem and no max-pool.
for _depth in (18, 34, 50):
    _block, _layers, _ = _IMAGENET[f"resnet{_depth}"]
    _arch = dict(block=_block, layers=_layers, stem="cifar", stem_width=64, shortcut="B")
    register(ModelSpec(f"resnet{_depth}_cifar", "cifar-imagenet-layout", _arch, 10, CIFAR))

# Wide ResNets (Zagoruyko & Komodakis 2016, arXiv:1605.07146): pre-activation basic blocks,
# (depth - 4) / 6 per stage, widths 16k/32k/64k. Dropout is left out.
for _depth, _k, _err in ((16, 4, None), (28, 10, 4.00)):
    _n = (_depth - 4) // 6
    _arch = dict(
        block="preact_basic",
        layers=(_n, _n, _n),
        widths=(16 * _k, 32 * _k, 64 * _k),
        stem="cifar",
        stem_width=16,
        shortcut="B",
    )
    _ref = "Zagoruyko & Komodakis 2016, arXiv:1605.07146, Table 4" if _err else None
    register(ModelSpec(f"wrn{_depth}_{_k}", "cifar-wide", _arch, 10, CIFAR, _err, _ref))

# The 9-layer residual BN net of the fast CIFAR-10 training records (a different layout: see
# resnet9.py); built for speed rather than depth.
register(ModelSpec("resnet9", "cifar-fast", {}, 10, CIFAR, builder=ResNet9))
