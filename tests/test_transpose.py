"""Transposed convolution: torchconv.conv_transpose1d / 2d and nn.ConvTranspose1d / 2d against torch's, on odd
geometry, with gradients, modules, convert() and torch.compile."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import torchconv

ALGORITHMS = ["auto", "direct", "im2col"]


@st.composite
def transpose_cases(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    oph, opw = draw(st.integers(0, max(sh, dh) - 1)), draw(st.integers(0, max(sw, dw) - 1))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    ok = all((n - 1) * s - 2 * p + d * (k - 1) + op + 1 > 0
             for n, s, p, d, k, op in ((H, sh, ph, dh, kh, oph), (W, sw, pw, dw, kw, opw)))
    if not ok:
        ph = pw = 0
    return dict(N=draw(st.sampled_from([0, 1, 3])), cin=cin, cout=cout, H=H, W=W, k=(kh, kw), stride=(sh, sw),
                padding=(ph, pw), output_padding=(oph, opw), dilation=(dh, dw), groups=groups,
                bias=draw(st.booleans()), algorithm=draw(st.sampled_from(ALGORITHMS)))


def run(c, dtype):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(c["N"], c["cin"], c["H"], c["W"], generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(c["cin"], c["cout"] // c["groups"], *c["k"], generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(c["cout"], generator=g, dtype=dtype, requires_grad=True) if c["bias"] else None
    args = (c["stride"], c["padding"], c["output_padding"], c["groups"], c["dilation"])
    y = torchconv.conv_transpose2d(x, w, b, *args, algorithm=c["algorithm"])
    ref = F.conv_transpose2d(x, w, b, *args)
    assert y.shape == ref.shape
    gy = torch.randn(ref.shape, generator=g, dtype=dtype)
    inputs = [t for t in (x, w, b) if t is not None]
    return y, ref, torch.autograd.grad(y, inputs, gy), torch.autograd.grad(ref, inputs, gy)


def check(c, dtype, tol):
    y, ref, grads, ref_grads = run(c, dtype)
    for a, b in zip((y, *grads), (ref, *ref_grads)):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@settings(max_examples=120, deadline=None)
@given(transpose_cases())
def test_matches_torch_float64(c):
    check(c, torch.float64, 1e-10)


@settings(max_examples=40, deadline=None)
@given(transpose_cases())
def test_matches_torch_float32(c):
    check(c, torch.float32, 1e-4)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gradcheck_and_gradgradcheck(algorithm):
    x = torch.randn(2, 4, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)

    def fn(x, w, b):
        return torchconv.conv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 0), 2, (1, 2), algorithm=algorithm)

    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


def test_dilation_larger_than_stride_output_padding():
    """output_padding may reach the stride when the dilation is larger: the extra rows read zeros."""
    x, w = torch.randn(2, 3, 5, 4, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    y = torchconv.conv_transpose2d(x, w, None, 1, 1, (1, 2), 1, 3)
    torch.testing.assert_close(y, F.conv_transpose2d(x, w, None, 1, 1, (1, 2), 1, 3))


@pytest.mark.parametrize("groups,unbatched", [(1, False), (2, True)])
def test_conv_transpose1d(groups, unbatched):
    x = torch.randn(*(() if unbatched else (3,)), 4, 11, dtype=torch.float64)
    w = torch.randn(4, 3, 5, dtype=torch.float64)
    b = torch.randn(3 * groups, dtype=torch.float64)
    y = torchconv.conv_transpose1d(x, w, b, 2, 1, 1, groups, 2)
    torch.testing.assert_close(y, F.conv_transpose1d(x, w, b, 2, 1, 1, groups, 2))


def test_unbatched_2d():
    x, w = torch.randn(3, 6, 5, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(torchconv.conv_transpose2d(x, w, stride=2), F.conv_transpose2d(x, w, stride=2))


@pytest.mark.parametrize("dims", [1, 2])
def test_modules_match_torch_with_output_size(dims):
    torch.manual_seed(0)
    cls = torch.nn.ConvTranspose2d if dims == 2 else torch.nn.ConvTranspose1d
    ref = cls(4, 6, 3, stride=2, padding=1, groups=2, dilation=1).double()
    ours = (torchconv.nn.ConvTranspose2d if dims == 2 else torchconv.nn.ConvTranspose1d)(
        4, 6, 3, stride=2, padding=1, groups=2).double()
    ours.load_state_dict(ref.state_dict())
    assert isinstance(ours, cls)
    x = torch.randn(2, 4, *([5, 7] if dims == 2 else [9]), dtype=torch.float64)
    size = [10, 14] if dims == 2 else [18]
    torch.testing.assert_close(ours(x, output_size=size), ref(x, output_size=size))
    torch.testing.assert_close(ours(x), ref(x))


def test_convert_swaps_transposed_convolutions():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ConvTranspose2d(8, 4, 2, stride=2),
                                torch.nn.ConvTranspose1d(4, 4, 3))
    ref = [m.weight for m in model]
    torchconv.convert(model, algorithm="im2col")
    assert [type(m) for m in model] == [torchconv.nn.Conv2d, torchconv.nn.ConvTranspose2d,
                                        torchconv.nn.ConvTranspose1d]
    assert all(m.weight is w for m, w in zip(model, ref)) and model[1].algorithm == "im2col"
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(model[1](model[0](x)),
                               F.conv_transpose2d(F.conv2d(x, ref[0], model[0].bias, padding=1), ref[1],
                                                  model[1].bias, stride=2), rtol=1e-4, atol=1e-4)


def test_compile_fullgraph():
    x, w = torch.randn(2, 4, 5, 5), torch.randn(4, 3, 3, 3)
    fn = torch.compile(lambda x, w: torchconv.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
                       fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(x, w), F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1))


@pytest.mark.parametrize("kwargs,match", [
    (dict(stride=2, output_padding=2), r"output_padding \(2, 2\) must be smaller than the stride \(2, 2\)"),
    (dict(padding=-1), "padding and output_padding must be non-negative"),
    (dict(stride=0), "stride and dilation must be positive"),
    (dict(groups=3), "in_channels 4 .* is not divisible by groups 3"),
    (dict(padding=5), "non-positive output size"),
])
def test_errors(kwargs, match):
    with pytest.raises(RuntimeError, match=match):
        torchconv.conv_transpose2d(torch.randn(1, 4, 3, 3), torch.randn(4, 2, 3, 3), **kwargs)


def test_channel_mismatch_error():
    with pytest.raises(RuntimeError, match="input has 3 channels, but weight of size"):
        torchconv.conv_transpose2d(torch.randn(1, 3, 3, 3), torch.randn(4, 2, 3, 3))
