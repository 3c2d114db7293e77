"""reslab.nn.BatchNorm1d/2d against torch.nn.BatchNorm1d/2d on random inputs."""

import pytest
import torch

from reslab.nn import BatchNorm1d, BatchNorm2d, BatchNormFunction

SHAPES = [(8, 3), (4, 5, 7), (4, 3, 5, 5), (2, 16, 8, 8), (1, 2, 3, 3)]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def _pair(shape, dtype, **kwargs):
    ours_cls, ref_cls = (
        (BatchNorm2d, torch.nn.BatchNorm2d)
        if len(shape) == 4
        else (BatchNorm1d, torch.nn.BatchNorm1d)
    )
    ref = ref_cls(shape[1], **kwargs).to(dtype)
    if ref.affine:
        with torch.no_grad():
            ref.weight.uniform_(0.5, 1.5)
            ref.bias.uniform_(-1, 1)
    ours = ours_cls(shape[1], **kwargs).to(dtype)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


def _step(module, x, g):
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(g)
    return y, x.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_matches_torch_over_several_training_steps(dtype, shape, momentum, affine, track):
    torch.manual_seed(0)
    ours, ref = _pair(shape, dtype, momentum=momentum, affine=affine, track_running_stats=track)
    tol = TOL[dtype]
    for _ in range(5):
        x = torch.randn(shape, dtype=dtype) * 3 + 1
        g = torch.randn(shape, dtype=dtype)
        y_ours, dx_ours = _step(ours, x, g)
        y_ref, dx_ref = _step(ref, x, g)
        torch.testing.assert_close(y_ours, y_ref, **tol)
        torch.testing.assert_close(dx_ours, dx_ref, **tol)
    if affine:
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, **tol)
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, **tol)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        a, b = getattr(ours, name), getattr(ref, name)
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, **tol)
    ours.eval(), ref.eval()
    x = torch.randn(shape, dtype=dtype)
    torch.testing.assert_close(ours(x), ref(x), **tol)


@pytest.mark.parametrize("shape", [(6, 3), (5, 4, 3), (3, 2, 4, 4)])
def test_gradcheck_float64(shape):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = (torch.rand(shape[1], dtype=torch.float64) + 0.5).requires_grad_()
    b = torch.randn(shape[1], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: BatchNormFunction.apply(x, w, b, 1e-5)[0], (x, w, b)
    )
    assert torch.autograd.gradcheck(lambda x: BatchNormFunction.apply(x, None, None, 1e-5)[0], (x,))


def test_backward_is_the_hand_written_one():
    x = torch.randn(4, 3, 2, 2, requires_grad=True)
    y = BatchNorm2d(3)(x)
    assert type(y.grad_fn).__name__ == "BatchNormFunctionBackward"


def test_state_dict_moves_both_ways():
    ref = torch.nn.BatchNorm2d(4)
    ref(torch.randn(8, 4, 3, 3))
    ours = BatchNorm2d(4)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    back = torch.nn.BatchNorm2d(4)
    back.load_state_dict(ours.state_dict(), strict=True)
    torch.testing.assert_close(back.running_var, ref.running_var)


@pytest.mark.parametrize(("cls", "shape"), [(BatchNorm1d, (1, 3)), (BatchNorm2d, (1, 3, 1, 1))])
def test_one_value_per_channel_is_a_clear_error(cls, shape):
    bn = cls(3)
    with pytest.raises(ValueError, match="more than one value per channel") as e:
        bn(torch.randn(shape))
    assert "drop_last" in str(e.value) and "eval()" in str(e.value)
    bn.eval()
    assert bn(torch.randn(shape)).shape == shape  # running statistics need no batch


def test_wrong_rank_and_width_are_errors():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        BatchNorm2d(3)(torch.randn(4, 3))
    with pytest.raises(ValueError, match="channels"):
        BatchNorm1d(3)(torch.randn(4, 5))


def test_channels_last_input_agrees_with_contiguous():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 5, 5)
    a, b = BatchNorm2d(8), BatchNorm2d(8)
    torch.testing.assert_close(a(x.to(memory_format=torch.channels_last)), b(x))
    torch.testing.assert_close(a.running_var, b.running_var)


def test_bfloat16_inputs_keep_their_dtype():
    x = torch.randn(8, 4, 3, 3).bfloat16()
    bn = BatchNorm2d(4)
    y = bn(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), torch.nn.BatchNorm2d(4)(x.float()), rtol=2e-2, atol=2e-2)
