"""Every registered network builds, runs forward and backward, and has the published size."""

import pytest
import torch

from reslab.models import create_model, get_spec, list_models, model_info

PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnet200": 64_673_832,
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
    "resnet18_cifar": 11_173_962,
    # conv 32*1*9, BN 2*32, linear 5408*128, BN1d 2*128, linear 128*10+10
    "small_cnn": 694_122,
    # the Keras placement keeps the conv and hidden-layer biases (BN after ReLU absorbs none)
    "small_cnn_relu_bn": 694_282,
    # stem 432+32; stages of two basic blocks at 16/32/64 with two 1x1 projections; fc 650
    "small_resnet": 175_258,
    # stem 432+32; conv 16->32 4,608+64 and a residual pair 2*(9,216+64); conv 32->64
    # 18,432+128; conv 64->128 73,728+256 and a residual pair 2*(147,456+256); fc 1,280
    "resnet9_w16": 412_944,
    # stem 216+16; stage 8: 6*(576+16); stage 16: 1,152+32, then 5*(2,304+32); stage 32:
    # 4,608+64, then 5*(9,216+64); fc 330 (option A adds no parameters)
    "resnet20_w8": 68_050,
    "plain20_w8": 68_050,
    # 9 convs per stage: stage 8 18*(576+16); stage 16 1,184 + 17*2,336; stage 32 4,672 +
    # 17*9,280
    "resnet56_w8": 214_546,
    # 784*100 + 2*100*100 (no biases: BN shifts) + 3 BN of 2*100; fc 100*10+10
    "mlp3_sigmoid": 100_010,
    # convs 3*8*9 + 8*16*9 + 16*32*9 + 32*32*9 + 32*64*9 + 3*(64*64*9); BN 2*344; fc 64*10+10
    "vgg11_w8": 145_554,
}
# Every norm choice of the small networks, exactly (GroupNorm has no 1-d form: the hidden layer
# of the CNN then has a bias and no norm).
SMALL_PARAMS = {
    ("small_cnn", "batchnorm"): 694_122,
    ("small_cnn", "batchnorm-scratch"): 694_122,
    ("small_cnn", "groupnorm"): 693_994,
    ("small_cnn", "none"): 693_962,
    ("small_cnn_relu_bn", "groupnorm"): 694_026,
    ("small_cnn_relu_bn", "none"): 693_962,
    ("small_resnet", "batchnorm-scratch"): 175_258,
    # the injected noise has no parameters; without a norm each layer has a bias instead
    ("mlp3_sigmoid", "batchnorm-noisy"): 100_010,
    ("mlp3_sigmoid", "none"): 99_710,
    ("vgg11_w8", "batchnorm-noisy"): 145_554,
    ("vgg11_w8", "none"): 145_210,
    ("small_resnet", "groupnorm"): 175_258,
    ("small_resnet", "none"): 174_698,
}
# Papers give these only to one decimal place, in millions.
APPROX_PARAMS = {
    "preact_resnet110": 1.7e6,
    "preact_resnet164": 1.7e6,
    "preact_resnet1001": 10.2e6,
    "wrn16_4": 2.7e6,
    "wrn28_10": 36.5e6,
}


@pytest.mark.parametrize("name", list(PARAMS))
def test_param_counts_match_published(name):
    assert model_info(name)["params"] == PARAMS[name]


@pytest.mark.parametrize(("name", "norm"), list(SMALL_PARAMS))
def test_small_networks_with_every_norm(name, norm):
    model = create_model(name, norm=norm)
    assert sum(p.numel() for p in model.parameters()) == SMALL_PARAMS[(name, norm)]
    spec = get_spec(name)
    assert model(torch.randn(3, *spec.input_size)).shape == (3, 10)


def test_small_cnn_derives_its_flatten_size_from_the_input():
    model = create_model("small_cnn", in_channels=3, image_size=(32, 32))
    assert model.hidden[0].in_features == 32 * 15 * 15
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", list(APPROX_PARAMS))
def test_param_counts_match_papers_to_a_decimal(name):
    assert abs(model_info(name)["params"] - APPROX_PARAMS[name]) < 0.15e6


@pytest.mark.parametrize("depth", [18, 34, 20, 32, 44, 56, 110])
def test_plain_twins_have_the_resnet_size(depth):
    # Option A shortcuts carry no weights, so a CIFAR plain net is exactly as large as its ResNet;
    # the ImageNet plain nets lose only the projection shortcuts.
    plain, res = model_info(f"plain{depth}"), model_info(f"resnet{depth}")
    assert plain["layers"] == res["layers"]
    if depth in (18, 34):
        assert plain["params"] < res["params"]
    else:
        assert plain["params"] == res["params"]


# The deepest and widest networks take most of this test's time; each family keeps a smaller
# member in the default suite (the ImageNet bottleneck nets run in test_torchvision_compat.py and
# test_fold.py there), and these run with the slow tests.
HEAVY = {"resnet34", "plain34", "resnet50", "resnet101", "resnet152", "resnet200", "resnet110",
         "resnet1202", "plain110",
         "preact_resnet110", "preact_resnet164", "preact_resnet1001", "wrn28_10",
         "resnet34_cifar", "resnet50_cifar"}  # fmt: skip


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in list_models()]
)
def test_forward_backward_train_and_eval(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7)
    spec = get_spec(name)  # ImageNet models run at 32x32 too (their pooling is adaptive)
    x = torch.randn(2, *(spec.input_size if spec.sized else (spec.input_size[0], 32, 32)))
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]  # frozen layers have none
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()


def test_registry_lists_every_family():
    families = {model_info(n)["family"] for n in list_models()}
    assert families >= {
        "imagenet",
        "imagenet-plain",
        "cifar",
        "cifar-plain",
        "cifar-preact",
        "cifar-imagenet-layout",
        "cifar-wide",
        "small",
    }
    assert list_models("resnet2*") == ["resnet200", "resnet20", "resnet20_w8", "resnet20_relu_bn"]


def test_model_info_carries_reference_errors():
    errors = [model_info(f"resnet{d}")["reference_error"] for d in (20, 32, 44, 56, 110, 1202)]
    assert errors == [8.75, 7.51, 7.17, 6.97, 6.43, 7.93]
    info = model_info("resnet50")
    assert info["input_size"] == (3, 224, 224) and info["family"] == "imagenet"


def test_unknown_model_names_the_closest():
    with pytest.raises(ValueError, match="resnet20"):
        create_model("resnet2O")
    with pytest.raises(ValueError, match="unknown name"):
        get_spec("vgg16")


def test_in_channels_and_num_classes():
    model = create_model("resnet20", num_classes=3, in_channels=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 3)
