"""torchconv.signal against scipy.signal: every mode x boundary, even and odd kernels, kernels larger than the image,
a non-zero fillvalue, batched inputs, gradients in both arguments."""

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torchconv import signal

MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symm")


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.sampled_from(MODES),
       st.sampled_from(BOUNDARIES), st.sampled_from([0.0, 1.5]), st.booleans(), st.integers(0, 2**31 - 1))
def test_2d_matches_scipy(H, W, kh, kw, mode, boundary, fillvalue, flip, seed):
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal((H, W)), rng.standard_normal((kh, kw))
    name = "convolve2d" if flip else "correlate2d"
    try:
        ref = getattr(scipy.signal, name)(x, k, mode, boundary, fillvalue)
    except ValueError:  # 'valid' with the kernel larger in one dimension only
        with pytest.raises(ValueError, match="one must be at least as large as the other"):
            getattr(signal, name)(torch.from_numpy(x), torch.from_numpy(k), mode, boundary, fillvalue)
        return
    got = getattr(signal, name)(torch.from_numpy(x), torch.from_numpy(k), mode, boundary, fillvalue)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from(MODES), st.booleans(), st.integers(0, 2**31 - 1))
def test_1d_matches_scipy(n, k, mode, flip, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(k)
    name = "convolve" if flip else "correlate"
    ref = getattr(scipy.signal, name)(x, w, mode)
    got = getattr(signal, name)(torch.from_numpy(x), torch.from_numpy(w), mode)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_batched_leading_dims(mode, boundary):
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3))
    got = signal.convolve2d(torch.from_numpy(x), torch.from_numpy(k), mode, boundary, 0.5)
    for i in range(2):
        for j in range(3):
            ref = scipy.signal.convolve2d(x[i, j], k, mode, boundary, 0.5)
            np.testing.assert_allclose(got[i, j].numpy(), ref, rtol=1e-10, atol=1e-10)
    assert signal.convolve2d(torch.zeros(0, 5, 5), torch.ones(3, 3)).shape == (0, 7, 7)


def test_worked_example_flipped():
    """The 8x8 step image (0 left, 3 right) with the vertical-edge kernel: the true convolution gives +9 at the step
    where torch's cross-correlation (tests/test_conformance.py) gives -9."""
    x = torch.zeros(8, 8, dtype=torch.float64)
    x[:, 4:] = 3.0
    k = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=torch.float64)
    expected = torch.zeros(6, 6, dtype=torch.float64)
    expected[:, 2:4] = 9.0
    torch.testing.assert_close(signal.convolve2d(x, k, "valid"), expected, rtol=0, atol=0)
    torch.testing.assert_close(signal.correlate2d(x, k, "valid"), -expected, rtol=0, atol=0)


@pytest.mark.parametrize("mode,boundary", [("full", "fill"), ("same", "wrap"), ("same", "symm"), ("valid", "fill")])
def test_gradcheck_both_arguments(mode, boundary):
    x = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, k: signal.convolve2d(x, k, mode, boundary, 0.7), (x, k))
    assert torch.autograd.gradcheck(lambda x, k: signal.correlate(x, k[0], mode), (x, k))


@pytest.mark.parametrize("call,match", [
    (lambda: signal.convolve2d(torch.ones(4, 4), torch.ones(3)), "a 2-D in2"),
    (lambda: signal.convolve2d(torch.ones(4, 4), torch.ones(3, 3), "middle"), "mode must be one of"),
    (lambda: signal.convolve2d(torch.ones(4, 4), torch.ones(3, 3), boundary="reflect"), "boundary must be one of"),
    (lambda: signal.convolve2d(torch.ones(4, 0), torch.ones(3, 3)), "no empty dimension"),
    (lambda: signal.correlate2d(torch.ones(4, 6), torch.ones(5, 3), "valid"), "at least as large"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
