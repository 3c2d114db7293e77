"""Shortcut options, norm choices and zero-init behave as the papers describe."""

import pytest
import torch
from torch import nn

from reslab.models import NORMS, create_model
from reslab.models.layers import PadShortcut


def _blocks(model):
    return model.blocks()


def test_shortcut_a_is_parameter_free_and_pads_zeros_on_both_sides():
    sc = PadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    y = sc(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, 8:24], x[:, :, ::2, ::2])
    assert (y[:, :8] == 0).all() and (y[:, 24:] == 0).all()
    assert not list(sc.parameters())
    # The reference reproduction's own expression for option A.
    reference = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 32 // 4, 32 // 4))
    torch.testing.assert_close(y, reference)


def test_shortcut_a_pad_after_keeps_the_old_layout():
    sc = PadShortcut(16, 32, stride=2, pad="after")
    x = torch.randn(2, 16, 8, 8)
    y = sc(x)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert (y[:, 16:] == 0).all()


def test_shortcut_pad_changes_the_function_not_the_weights():
    both = create_model("resnet20").eval()
    after = create_model("resnet20", shortcut_pad="after").eval()
    after.load_state_dict(both.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(both(x), after(x))


@pytest.mark.parametrize(
    ("shortcut", "expected"),
    [("A", ["none", "pad", "none"]), ("B", ["none", "proj", "none"]), ("C", ["proj"] * 3)],
)
def test_shortcut_kinds_where_the_shape_changes(shortcut, expected):
    model = create_model("resnet20", shortcut=shortcut)
    # Blocks 2, 3, 4 of resnet20: last of stage 1, first of stage 2 (16->32, stride 2), second.
    kinds = []
    for block in _blocks(model)[2:5]:
        sc = block.downsample
        kinds.append("none" if sc is None else "pad" if isinstance(sc, PadShortcut) else "proj")
        assert block.residual
    assert kinds == expected


def test_shortcut_none_is_the_plain_twin():
    plain = create_model("resnet20", shortcut="none")
    twin = create_model("plain20")
    assert all(not b.residual and b.downsample is None for b in _blocks(plain))
    twin.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    plain.eval(), twin.eval()
    torch.testing.assert_close(plain(x), twin(x))
    # The block output is then exactly relu(branch).
    block = _blocks(plain)[0]
    branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x.new_ones(1, 16, 8, 8))))))
    torch.testing.assert_close(block(x.new_ones(1, 16, 8, 8)), torch.relu(branch))


def test_unknown_shortcut_and_norm_are_config_errors():
    with pytest.raises(ValueError, match="allowed: A, B, C, none"):
        create_model("resnet20", shortcut="D")
    with pytest.raises(ValueError, match="allowed: batchnorm"):
        create_model("resnet20", norm="layernorm")


@pytest.mark.parametrize("norm", list(NORMS))
def test_every_norm_choice(norm):
    model = create_model("resnet20", norm=norm)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    # Without a norm the convolutions carry their own bias; with one the norm's shift does.
    assert all((c.bias is not None) == (norm == "none") for c in convs)
    out = model(torch.randn(4, 3, 32, 32))
    out.sum().backward()
    assert torch.isfinite(out).all()


def test_groupnorm_groups_keep_four_channels_each():
    model = create_model("resnet20", norm="groupnorm")
    gns = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert {(g.num_channels, g.num_groups) for g in gns} == {(16, 4), (32, 8), (64, 16)}


def test_scratch_batchnorm_model_matches_torch_batchnorm_model():
    torch.manual_seed(0)
    fused = create_model("resnet20", norm="batchnorm")
    scratch = create_model("resnet20", norm="batchnorm-scratch")
    scratch.load_state_dict(fused.state_dict(), strict=True)
    x = torch.randn(8, 3, 32, 32)
    out_f, out_s = fused(x), scratch(x)
    torch.testing.assert_close(out_s, out_f, rtol=1e-4, atol=1e-5)
    out_f.sum().backward()
    out_s.sum().backward()
    torch.testing.assert_close(
        scratch.conv1.weight.grad, fused.conv1.weight.grad, rtol=1e-3, atol=1e-4
    )
    fused.eval(), scratch.eval()
    torch.testing.assert_close(scratch(x), fused(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "name",
    ["resnet20", "resnet50", pytest.param("preact_resnet164", marks=pytest.mark.slow), "wrn16_4"],
)
@pytest.mark.parametrize("norm", ["batchnorm", "none"])
def test_zero_init_residual_makes_every_block_start_as_its_shortcut(name, norm):
    model = create_model(name, norm=norm, zero_init_residual=True).eval()
    x = torch.randn(2, 3, 32, 32)
    h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    with torch.no_grad():
        for block in _blocks(model):
            pre = torch.relu(block.bn1(h)) if block.preact else h
            shortcut = h if block.downsample is None else block.downsample(pre)
            out = block(h)
            expected = shortcut if block.preact else torch.relu(shortcut)
            torch.testing.assert_close(out, expected)
            h = out


def test_resnet_takes_classes_and_factories_like_torchvision():
    from reslab.models import BasicBlock, Norm, ResNet
    from reslab.models.layers import pad_shortcut

    net = ResNet(BasicBlock, (2, 2, 2, 2), norm=nn.BatchNorm2d)  # torchvision's resnet18 call
    assert sum(p.numel() for p in net.parameters()) == 11_689_512
    cifar = ResNet(
        BasicBlock,
        (3, 3, 3),
        widths=(16, 32, 64),
        stem="cifar",
        stem_width=16,
        num_classes=10,
        norm=Norm(nn.BatchNorm2d),
        shortcut=pad_shortcut,
    )
    zoo = create_model("resnet20")
    cifar.load_state_dict(zoo.state_dict())  # the same network as the registry's resnet20
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(cifar.eval()(x), zoo.eval()(x))
    plain = ResNet(BasicBlock, (1, 1), widths=(8, 16), stem="cifar", stem_width=8, shortcut=None)
    assert all(not b.residual for b in plain.blocks())


def test_resnet9_honours_every_shortcut_option():
    def projections(model):
        return sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in model.modules())

    a, b = create_model("resnet9", shortcut="A"), create_model("resnet9", shortcut="B")
    assert projections(a) == projections(b) == 0  # identity: the shape never changes there
    assert projections(create_model("resnet9", shortcut="C")) == 2  # one per residual block
    plain = create_model("resnet9", shortcut="none")
    assert not plain.layer1[-1].residual and not plain.layer3[-1].residual
    x = torch.randn(2, 3, 32, 32)
    for model in (a, create_model("resnet9", shortcut="C"), plain):
        assert model(x).shape == (2, 10)


def test_zoo_entries_are_keyword_data():
    from reslab.models import get_spec

    spec = get_spec("resnet56")
    assert spec.shortcut == "A" and spec.arch["layers"] == (9, 9, 9)
    assert spec.arch["block"].__name__ == "BasicBlock"
    import reslab.models.zoo as zoo

    assert not [n for n in vars(zoo) if n.startswith("_") and not n.startswith("__") and
                not callable(getattr(zoo, n))]  # fmt: skip
