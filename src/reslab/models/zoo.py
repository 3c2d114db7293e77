"""Every registered network, as data. A new variant is a new entry here, not a new class."""

from __future__ import annotations

from torch import nn

from reslab.models.blocks import (
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    ReluBNBasicBlock,
)
from reslab.models.mlp import MLP
from reslab.models.registry import ModelSpec, register
from reslab.models.resnet9 import ResNet9
from reslab.models.small import SmallCNN
from reslab.models.vgg import VGG, VGG11, scaled

IMAGENET = (3, 224, 224)
CIFAR = (3, 32, 32)
TV_REF = "torchvision IMAGENET1K_V1 weights, single 224 crop"
HE2015 = "He et al. 2015, arXiv:1512.03385, Table 6 (CIFAR-10)"
HE2016 = "He et al. 2016, arXiv:1603.05027, Table 3 (CIFAR-10)"
WRN = "Zagoruyko & Komodakis 2016, arXiv:1605.07146, Table 4"

# ImageNet layout: 7x7 stem, max-pool, four stages of 64..512 (He et al. 2015, Table 1).
# depth -> (block, blocks per stage, torchvision's top-1 error %)
IMAGENET_RESNETS = {
    18: (BasicBlock, (2, 2, 2, 2), 30.24),
    34: (BasicBlock, (3, 4, 6, 3), 26.69),
    50: (Bottleneck, (3, 4, 6, 3), 23.87),
    101: (Bottleneck, (3, 4, 23, 3), 22.63),
    152: (Bottleneck, (3, 8, 36, 3), 21.69),
    200: (Bottleneck, (3, 24, 36, 3), None),
}
# CIFAR layout: 3x3 stem, three stages of 16/32/64 with n blocks each, 6n+2 layers, option A.
# depth -> the paper's CIFAR-10 test error %
CIFAR_RESNET_ERRORS = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
CIFAR_PLAIN_DEPTHS = (20, 32, 44, 56, 110)
# The same depths at half the width (8/16/32 channels), plain and residual: depth questions at
# less cost, e.g. the degradation experiment on a CPU.
NARROW_DEPTHS = (20, 32, 44, 56)
NARROW = (8, 16, 32)
# Pre-activation CIFAR nets (He et al. 2016): name -> (block, n per stage, error %)
PREACT_RESNETS = {
    "preact_resnet110": (PreActBasicBlock, 18, 6.37),
    "preact_resnet164": (PreActBottleneck, 18, 5.46),
    "preact_resnet1001": (PreActBottleneck, 111, 4.92),
}
# Wide ResNets: (depth, widening factor k, error %); dropout is left out.
WIDE_RESNETS = ((16, 4, None), (28, 10, 4.00))


def cifar_arch(depth: int, block: type = BasicBlock, widths=(16, 32, 64)) -> dict:
    """The CIFAR layout of a 6n+2 network (9n+2 with bottlenecks): n blocks per stage, the stem
    as wide as the first stage."""
    per_block = 9 if block.__name__.endswith("Bottleneck") else 6
    n = (depth - 2) // per_block
    return dict(block=block, layers=(n, n, n), widths=widths, stem="cifar", stem_width=widths[0])


def _register_imagenet() -> None:
    for depth, (block, layers, error) in IMAGENET_RESNETS.items():
        register(
            ModelSpec(
                name=f"resnet{depth}",
                family="imagenet",
                arch=dict(block=block, layers=layers),
                num_classes=1000,
                input_size=IMAGENET,
                shortcut="B",
                reference_error=error,
                reference=TV_REF if error is not None else None,
            )
        )
    for depth in (18, 34):
        block, layers, _ = IMAGENET_RESNETS[depth]
        register(
            ModelSpec(
                name=f"plain{depth}",
                family="imagenet-plain",
                arch=dict(block=block, layers=layers),
                num_classes=1000,
                input_size=IMAGENET,
                shortcut="none",
            )
        )


def _register_cifar() -> None:
    for depth, error in CIFAR_RESNET_ERRORS.items():
        register(
            ModelSpec(
                name=f"resnet{depth}",
                family="cifar",
                arch=cifar_arch(depth),
                num_classes=10,
                input_size=CIFAR,
                shortcut="A",
                reference_error=error,
                reference=HE2015,
            )
        )
    for depth in CIFAR_PLAIN_DEPTHS:
        register(
            ModelSpec(
                name=f"plain{depth}",
                family="cifar-plain",
                arch=cifar_arch(depth),
                num_classes=10,
                input_size=CIFAR,
                shortcut="none",
            )
        )
    for depth in NARROW_DEPTHS:
        for kind, family, shortcut in (("resnet", "cifar", "A"), ("plain", "cifar-plain", "none")):
            register(
                ModelSpec(
                    name=f"{kind}{depth}_w{NARROW[0]}",
                    family=family,
                    arch=cifar_arch(depth, widths=NARROW),
                    num_classes=10,
                    input_size=CIFAR,
                    shortcut=shortcut,
                )
            )


def _register_variants() -> None:
    # Variants of resnet20 for the placement experiment: same depth, widths and option A.
    for name, family, block in (
        ("preact_resnet20", "cifar-preact", PreActBasicBlock),
        ("resnet20_relu_bn", "cifar", ReluBNBasicBlock),
    ):
        register(
            ModelSpec(
                name=name,
                family=family,
                arch=cifar_arch(20, block),
                num_classes=10,
                input_size=CIFAR,
                shortcut="A",
            )
        )
    # Pre-activation nets with projection shortcuts where the shape changes.
    for name, (block, n, error) in PREACT_RESNETS.items():
        arch = dict(block=block, layers=(n, n, n), widths=(16, 32, 64), stem="cifar", stem_width=16)
        register(
            ModelSpec(
                name=name,
                family="cifar-preact",
                arch=arch,
                num_classes=10,
                input_size=CIFAR,
                shortcut="B",
                reference_error=error,
                reference=HE2016,
            )
        )


def _register_other_layouts() -> None:
    # The ImageNet layout adapted to 32x32 inputs: 3x3 stem and no max-pool.
    for depth in (18, 34, 50):
        block, layers, _ = IMAGENET_RESNETS[depth]
        register(
            ModelSpec(
                name=f"resnet{depth}_cifar",
                family="cifar-imagenet-layout",
                arch=dict(block=block, layers=layers, stem="cifar", stem_width=64),
                num_classes=10,
                input_size=CIFAR,
                shortcut="B",
            )
        )
    # Wide ResNets: pre-activation basic blocks, (depth - 4) / 6 per stage, widths 16k/32k/64k.
    for depth, k, error in WIDE_RESNETS:
        n = (depth - 4) // 6
        register(
            ModelSpec(
                name=f"wrn{depth}_{k}",
                family="cifar-wide",
                arch=dict(
                    block=PreActBasicBlock,
                    layers=(n, n, n),
                    widths=(16 * k, 32 * k, 64 * k),
                    stem="cifar",
                    stem_width=16,
                ),
                num_classes=10,
                input_size=CIFAR,
                shortcut="B",
                reference_error=error,
                reference=WRN if error is not None else None,
            )
        )
    # The 9-layer residual BN net of the fast CIFAR-10 training records (a different layout:
    # see resnet9.py); built for speed rather than depth.
    register(
        ModelSpec(
            name="resnet9",
            family="cifar-fast",
            arch={},
            num_classes=10,
            input_size=CIFAR,
            shortcut="B",
            builder=ResNet9,
        )
    )
    # The same net at a quarter, 3/8 and half of the width (1/16, 1/7 and 1/4 of the FLOPs):
    # shaped for a CPU's budget (docs/speed.md measures their speed against resnet20's).
    for first in (16, 24, 32):
        register(
            ModelSpec(
                name=f"resnet9_w{first}",
                family="cifar-fast",
                arch={"widths": (first, 2 * first, 4 * first, 8 * first)},
                num_classes=10,
                input_size=CIFAR,
                shortcut="B",
                builder=ResNet9,
            )
        )
    # Its stem replaced by the records' frozen 2x2 patch-whitening layer (24 channels), whose
    # filters come from the training images (docs/models.md).
    register(
        ModelSpec(
            name="resnet9_w16_whiten",
            family="cifar-fast",
            arch={"widths": (24, 32, 64, 128), "whiten": True},
            num_classes=10,
            input_size=CIFAR,
            shortcut="B",
            builder=ResNet9,
        )
    )


def _register_small() -> None:
    # The networks introductions to BN and residual blocks start from: a one-conv CNN with BN in
    # a conv and a fully connected layer (28x28x1; BN before or after the ReLU), and a small
    # CIFAR ResNet of two basic blocks per stage with projection shortcuts.
    for name, placement in (("small_cnn", "bn_relu"), ("small_cnn_relu_bn", "relu_bn")):
        register(
            ModelSpec(
                name=name,
                family="small",
                arch=dict(placement=placement),
                num_classes=10,
                input_size=(1, 28, 28),
                shortcut="none",
                builder=SmallCNN,
                sized=True,
            )
        )
    register(
        ModelSpec(
            name="small_resnet",
            family="small",
            arch=cifar_arch(14),
            num_classes=10,
            input_size=CIFAR,
            shortcut="B",
        )
    )


def _register_bn_studies() -> None:
    # The networks of the two papers on why BN works: the BN paper's fully connected net (3
    # hidden layers of 100 sigmoid units, for 28x28 digits; Ioffe & Szegedy 2015, Sec. 4.1),
    # and VGG-11 at 1/8 of its width (8 convolutions, no skip path), the CIFAR-10 VGG of
    # Santurkar et al. 2018 (arXiv:1805.11604) shaped for a CPU's budget.
    register(
        ModelSpec(
            name="mlp3_sigmoid",
            family="small",
            arch=dict(hidden=(100, 100, 100), activation=nn.Sigmoid),
            num_classes=10,
            input_size=(1, 28, 28),
            shortcut="none",
            builder=MLP,
            sized=True,
        )
    )
    register(
        ModelSpec(
            name="vgg11_w8",
            family="small",
            arch=dict(layout=scaled(VGG11, 8)),
            num_classes=10,
            input_size=CIFAR,
            shortcut="none",
            builder=VGG,
        )
    )


_register_imagenet()
_register_cifar()
_register_variants()
_register_other_layouts()
_register_small()
_register_bn_studies()
