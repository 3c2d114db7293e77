"""The small networks: the CNN's two BN placements, and reslab's BatchNorm1d/2d inside it
against torch's (outputs, gradients, running statistics)."""

import pytest
import torch
from torch import nn

from reslab import nn as rnn
from reslab.models import create_model


def test_placements_put_the_norm_before_or_after_the_relu():
    before = create_model("small_cnn")
    after = create_model("small_cnn_relu_bn")
    assert [type(m) for m in before.features[1:3]] == [nn.BatchNorm2d, nn.ReLU]
    assert [type(m) for m in after.features[1:3]] == [nn.ReLU, nn.BatchNorm2d]
    assert [type(m) for m in before.hidden[1:]] == [nn.BatchNorm1d, nn.ReLU]
    assert [type(m) for m in after.hidden[1:]] == [nn.ReLU, nn.BatchNorm1d]
    # A norm right after a layer absorbs its bias; after a ReLU it does not.
    assert before.features[0].bias is None and after.features[0].bias is not None


@pytest.mark.parametrize("name", ["small_cnn", "small_cnn_relu_bn"])
def test_scratch_batchnorm_matches_torch_inside_the_cnn(name):
    torch.manual_seed(0)
    ours = create_model(name, norm="batchnorm-scratch").double()
    theirs = create_model(name, norm="batchnorm").double()
    assert isinstance(ours.hidden[1 if name == "small_cnn" else 2], rnn.BatchNorm1d)
    theirs.load_state_dict(ours.state_dict())
    for _ in range(3):  # train mode: batch statistics, and the running averages they feed
        x = torch.randn(16, 1, 28, 28, dtype=torch.float64)
        out_a, out_b = ours(x), theirs(x)
        torch.testing.assert_close(out_a, out_b, rtol=1e-10, atol=1e-10)
        out_a.square().sum().backward()
        out_b.square().sum().backward()
        for (n, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-10, msg=n)
            a.grad = b.grad = None
    for (n, a), b in zip(ours.named_buffers(), theirs.buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=n)
    ours.eval(), theirs.eval()
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-10, atol=1e-10)


def test_small_resnet_has_projections_only_where_the_shape_changes():
    model = create_model("small_resnet")
    projections = [b.downsample is not None for b in model.blocks()]
    assert projections == [False, False, True, False, True, False]
    assert [len(getattr(model, f"layer{i}")) for i in (1, 2, 3)] == [2, 2, 2]
