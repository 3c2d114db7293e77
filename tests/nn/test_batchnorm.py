"""reslab.nn.BatchNorm1d/2d against torch.nn.BatchNorm1d/2d on random inputs."""

import copy

import pytest
import torch
from torch.func import functional_call

from reslab.nn import BatchNorm1d, BatchNorm2d, BatchNormFunction

SHAPES = [(8, 3), (4, 5, 7), (4, 3, 5, 5), (2, 16, 8, 8), (1, 2, 3, 3)]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    # The tensors here are tiny: intra-op threads only add synchronisation, which on a busy
    # 2-core machine makes torch's own CPU batch norm ~100x slower. Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _classes(rank):
    return (BatchNorm2d, torch.nn.BatchNorm2d) if rank == 4 else (BatchNorm1d, torch.nn.BatchNorm1d)


def _pair(shape, dtype=torch.float32, **kwargs):
    ours_cls, ref_cls = _classes(len(shape))
    ref = ref_cls(shape[1], dtype=dtype, **kwargs)
    with torch.no_grad():
        if ref.weight is not None:
            ref.weight.uniform_(0.5, 1.5)
        if ref.bias is not None:
            ref.bias.uniform_(-1, 1)
    ours = ours_cls(shape[1], dtype=dtype, **kwargs)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


def _step(module, x, g):
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(g)
    return y, x.grad


def _assert_same_state(ours, ref, **tol):
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        a, b = getattr(ours, name), getattr(ref, name)
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, **tol)
            if isinstance(a, torch.nn.Parameter):
                torch.testing.assert_close(a.grad, b.grad, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_matches_torch_over_training_steps_then_eval(dtype, shape, momentum, affine, track):
    torch.manual_seed(0)
    ours, ref = _pair(shape, dtype, momentum=momentum, affine=affine, track_running_stats=track)
    tol = TOL[dtype]
    for _ in range(5):
        x = torch.randn(shape, dtype=dtype) * 3 + 1
        g = torch.randn(shape, dtype=dtype)
        for m in (ours, ref):
            m.zero_grad()
        y_ours, dx_ours = _step(ours, x, g)
        y_ref, dx_ref = _step(ref, x, g)
        torch.testing.assert_close(y_ours, y_ref, **tol)
        torch.testing.assert_close(dx_ours, dx_ref, **tol)
        _assert_same_state(ours, ref, **tol)
    ours.eval(), ref.eval()
    x, g = torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
    y_ours, dx_ours = _step(ours, x, g)
    y_ref, dx_ref = _step(ref, x, g)
    torch.testing.assert_close(y_ours, y_ref, **tol)
    torch.testing.assert_close(dx_ours, dx_ref, **tol)


@pytest.mark.parametrize("shape", [(6, 3), (5, 4, 3), (3, 2, 4, 4)])
def test_gradcheck_float64_through_the_module_in_train_mode(shape):
    torch.manual_seed(0)
    bn = _classes(len(shape))[0](shape[1], track_running_stats=False, dtype=torch.float64)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = (torch.rand(shape[1], dtype=torch.float64) + 0.5).requires_grad_()
    b = torch.randn(shape[1], dtype=torch.float64, requires_grad=True)

    def f(x, w, b):
        return functional_call(bn, {"weight": w, "bias": b}, (x,))

    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradcheck(lambda x: BatchNormFunction.apply(x, None, None, 1e-5)[0], (x,))


def test_backward_is_the_hand_written_one():
    x = torch.randn(4, 3, 2, 2, requires_grad=True)
    y = BatchNorm2d(3)(x)
    assert type(y.grad_fn).__name__ == "BatchNormFunctionBackward"


def test_skips_unneeded_grads():
    bn = BatchNorm2d(3)
    bn.weight.requires_grad_(False)
    x = torch.randn(4, 3, 2, 2, requires_grad=True)
    bn(x).sum().backward()
    assert bn.weight.grad is None and bn.bias.grad is not None and x.grad is not None


def test_inplace_op_on_output_of_affine_free_layer_keeps_backward_valid():
    torch.manual_seed(0)
    ours, ref = _pair((4, 3, 5, 5), affine=False)
    x, g = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    grads = []
    for m in (ours, ref):
        xi = x.clone().requires_grad_()
        torch.relu_(m(xi)).backward(g)
        grads.append(xi.grad)
    torch.testing.assert_close(*grads, **TOL[torch.float32])


def test_state_dict_moves_both_ways():
    torch.manual_seed(0)
    ref = torch.nn.BatchNorm2d(4)
    ref(torch.randn(8, 4, 3, 3))
    ours = BatchNorm2d(4)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours(torch.randn(8, 4, 3, 3))
    back = torch.nn.BatchNorm2d(4)
    back.load_state_dict(ours.state_dict(), strict=True)
    for name, value in ours.state_dict().items():
        torch.testing.assert_close(back.state_dict()[name], value)


def test_checkpoint_without_num_batches_tracked_loads_strictly():
    state = BatchNorm1d(3).state_dict()
    del state["num_batches_tracked"]
    state._metadata[""]["version"] = 1  # written before the buffer existed, like old torch
    ours = BatchNorm1d(3)
    ours.load_state_dict(state, strict=True)
    assert ours.num_batches_tracked.item() == 0


def test_constructor_options_repr_and_resets_match_torch():
    for kwargs in (
        {},
        dict(eps=1e-3, momentum=None),
        dict(affine=False, track_running_stats=False),
        dict(bias=False),
    ):
        ours, ref = BatchNorm2d(5, **kwargs), torch.nn.BatchNorm2d(5, **kwargs)
        assert repr(ours) == repr(ref)
        assert list(ours.state_dict()) == list(ref.state_dict())
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    bn = BatchNorm1d(3, dtype=torch.float64)
    assert bn.weight.dtype == bn.running_var.dtype == torch.float64
    assert bn.num_batches_tracked.dtype == torch.long
    bn(torch.randn(4, 3, dtype=torch.float64))
    with torch.no_grad():
        bn.weight.mul_(2)
    bn.reset_running_stats()
    assert bn.num_batches_tracked.item() == 0 and bn.running_var.eq(1).all()
    assert bn.weight.eq(2).all()
    bn.reset_parameters()
    assert bn.weight.eq(1).all() and bn.bias.eq(0).all()


def test_bias_false_matches_torch():
    torch.manual_seed(0)
    ours, ref = _pair((4, 3, 2, 2), bias=False)
    x, g = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    for a, b in zip(_step(ours, x, g), _step(ref, x, g), strict=True):
        torch.testing.assert_close(a, b, **TOL[torch.float32])
    _assert_same_state(ours, ref, **TOL[torch.float32])


@pytest.mark.parametrize(("cls", "shape"), [(BatchNorm1d, (1, 3)), (BatchNorm2d, (1, 3, 1, 1))])
def test_one_value_per_channel_is_a_clear_error(cls, shape):
    bn = cls(3)
    with pytest.raises(ValueError, match="more than one value per channel") as e:
        bn(torch.randn(shape))
    assert "drop_last" in str(e.value) and "eval()" in str(e.value)
    assert "undefined" in str(e.value)
    assert bn.num_batches_tracked.item() == 0  # a rejected batch is not counted
    bn.eval()
    assert bn(torch.randn(shape)).shape == shape  # running statistics need no batch


def test_one_value_per_channel_without_buffers_fails_in_eval_too():
    bn = BatchNorm1d(3, track_running_stats=False).eval()
    with pytest.raises(ValueError, match="track_running_stats=False"):
        bn(torch.randn(1, 3))
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(3, track_running_stats=False).eval()(torch.randn(1, 3))
    BatchNorm1d(3)(torch.randn(1, 3, 2))  # two values per channel are enough, as in torch


def test_empty_batch_matches_torch():
    ours, ref = _pair((0, 3, 4, 4))
    x = torch.randn(0, 3, 4, 4)
    for a, b in zip(_step(ours, x, x), _step(ref, x, x), strict=True):
        assert a.shape == b.shape == x.shape
    _assert_same_state(ours, ref)


def test_wrong_rank_and_width_are_errors():
    with pytest.raises(ValueError, match=r"expects a \(N, C, H, W\) input"):
        BatchNorm2d(3)(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"\(N, C\) or \(N, C, L\)"):
        BatchNorm1d(3)(torch.randn(4, 3, 2, 2))
    with pytest.raises(ValueError, match="channels"):
        BatchNorm1d(3)(torch.randn(4, 5))


@pytest.mark.parametrize("training", [True, False])
def test_channels_last_input_agrees_with_contiguous(training):
    torch.manual_seed(0)
    x, g = torch.randn(4, 8, 5, 5), torch.randn(4, 8, 5, 5)
    a = _pair(x.shape)[0]
    with torch.no_grad():  # non-trivial running stats for the eval case
        a.running_mean.uniform_(-1, 1), a.running_var.uniform_(0.5, 2)
    b = copy.deepcopy(a)
    a.train(training), b.train(training)
    y_cl, dx_cl = _step(a, x.to(memory_format=torch.channels_last), g)
    y, dx = _step(b, x, g)
    torch.testing.assert_close(y_cl, y)
    torch.testing.assert_close(dx_cl, dx)
    _assert_same_state(a, b)


def test_low_precision_inputs_keep_their_dtype_and_match_torch():
    torch.manual_seed(0)
    ours, ref = _pair((8, 4, 3, 3))
    x = torch.randn(8, 4, 3, 3).bfloat16()
    y = ours(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), ref(x.float()), rtol=2e-2, atol=2e-2)
    assert ours.running_var.dtype == torch.float32
    torch.testing.assert_close(ours.running_var, ref.running_var)


def test_under_cpu_autocast_matches_torch():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3)
    ours, ref = _pair((8, 4, 6, 6))
    x = torch.randn(8, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ours, y_ref = ours(conv(x)), ref(conv(x))
    assert y_ours.dtype == y_ref.dtype
    torch.testing.assert_close(y_ours.float(), y_ref.float(), rtol=2e-2, atol=2e-2)
    y_ours.float().sum().backward()
    assert ours.weight.grad.dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_channels_last_matches_torch(dtype):
    torch.manual_seed(0)
    ours, ref = (m.cuda() for m in _pair((16, 8, 12, 12)))
    conv = torch.nn.Conv2d(3, 8, 3, padding=1).cuda().to(memory_format=torch.channels_last)
    x = torch.randn(16, 3, 12, 12, device="cuda").to(memory_format=torch.channels_last)
    g = torch.randn(16, 8, 12, 12, device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        h = conv(x).detach()
        y_ours, dx_ours = _step(ours, h, g.to(dtype))
        y_ref, dx_ref = _step(ref, h, g.to(dtype))
    assert y_ours.dtype == y_ref.dtype == dtype
    torch.testing.assert_close(y_ours.float(), y_ref.float(), rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(dx_ours.float(), dx_ref.float(), rtol=2e-2, atol=5e-2)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=1e-3, atol=1e-3)


def test_a_network_trains_the_same_steps_in_float64_at_a_high_learning_rate():
    """The network-level form of the layer checks: the small CNN (BatchNorm2d and BatchNorm1d)
    with either BN, from the same weights, through 40 SGD steps at lr 1.0, the edge of stability,
    where in float32 the two layers' rounding alone (1e-7 a call, alike for both) grows to weights
    that differ by order one within about 60 steps. In float64 the two trajectories stay equal
    to rounding: whatever separates float32 runs is not a difference in the math."""
    from reslab.models import create_model

    def build(norm):
        kwargs = dict(num_classes=10, in_channels=3, image_size=(16, 16))
        return create_model("small_cnn", norm=norm, **kwargs).double()

    ref, ours = build("batchnorm"), build("batchnorm-scratch")
    ours.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, 16, 16, generator=g, dtype=torch.float64)
    y = (x.flatten(1) @ torch.randn(768, 10, generator=g, dtype=torch.float64)).argmax(1)
    opts = [torch.optim.SGD(m.parameters(), lr=1.0, momentum=0.9, weight_decay=5e-4)
            for m in (ref, ours)]  # fmt: skip
    for _ in range(40):
        batch = torch.randint(0, 256, (64,), generator=g)
        losses = []
        for model, opt in zip((ref, ours), opts, strict=True):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[0] == pytest.approx(losses[1], rel=1e-9)
    for (name, a), b in zip(ref.state_dict().items(), ours.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=name)
    ref.eval(), ours.eval()
    torch.testing.assert_close(ref(x), ours(x), rtol=1e-8, atol=1e-10)
