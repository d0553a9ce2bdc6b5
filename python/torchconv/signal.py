"""scipy.signal's convolve2d / correlate2d / convolve / correlate on tensors: the same modes, boundaries, output
shapes and centring, but batched over the leading dimensions of in1, differentiable in both arguments, and run on
torchconv's kernels (one depthwise convolution over the batch, the boundary as the kernel's padding mode, no padded
copy)."""

import torch
from torch import Tensor

from . import functional

__all__ = ["convolve2d", "correlate2d", "convolve", "correlate"]

_MODES = ("full", "same", "valid")
_BOUNDARIES = {"fill": "zeros", "wrap": "circular", "symm": "symmetric"}


def _window(n, k, mode, same_start):
    """(size, padding before, padding after) along one dimension: the slice of the 'full' result, [start,
    start + size), that the mode keeps, as the padding of a correlation whose output is that slice."""
    if mode == "full":
        size, start = n + k - 1, 0
    elif mode == "same":
        size, start = n, same_start
    else:  # valid: the part that needs no boundary; a kernel larger than the image is swapped for it, as in scipy
        size, start = abs(n - k) + 1, min(n, k) - 1
    before = k - 1 - start
    return size, before, size + k - 1 - n - before


def _check(in1, in2, dims, mode, name):
    if not isinstance(in1, torch.Tensor) or not isinstance(in2, torch.Tensor):
        raise TypeError(f"torchconv.signal.{name}: in1 and in2 must be tensors")
    if in1.dim() < dims or in2.dim() != dims:
        raise ValueError(f"torchconv.signal.{name}: expected in1 with at least {dims} dimensions and a {dims}-D in2, "
                         f"got in1 of size {tuple(in1.shape)} and in2 of size {tuple(in2.shape)}")
    if mode not in _MODES:
        raise ValueError(f"torchconv.signal.{name}: mode must be one of full, same, valid, got {mode!r}")
    image, kernel = in1.shape[in1.dim() - dims:], in2.shape
    if 0 in image or 0 in kernel:
        raise ValueError(f"torchconv.signal.{name}: in1 and in2 must have no empty dimension, got image "
                         f"{tuple(image)} and kernel {tuple(kernel)}")
    if mode == "valid":
        if not (all(n >= k for n, k in zip(image, kernel)) or all(k >= n for n, k in zip(image, kernel))):
            raise ValueError(f"torchconv.signal.{name}: for 'valid' mode, one must be at least as large as the other "
                             f"in every dimension, got image {tuple(image)} and kernel {tuple(kernel)}")


def _filter2d(in1, in2, mode, boundary, fillvalue, flip, name, centre_as_convolution=None):
    if centre_as_convolution is None:  # the 2-D functions (the 1-D ones check their own arguments)
        _check(in1, in2, 2, mode, name)
        centre_as_convolution = flip
    if boundary not in _BOUNDARIES:
        raise ValueError(f"torchconv.signal.{name}: boundary must be one of fill, wrap, symm, got {boundary!r}")
    batch, (H, W) = in1.shape[:-2], in1.shape[-2:]
    kh, kw = in2.shape
    # scipy centres 'same' on the full result at (k - 1) // 2 for a convolution and k // 2 for correlate2d (the 1-D
    # correlate is a convolution with the reversed kernel, centred as one).
    oh, top, bottom = _window(H, kh, mode, (kh - 1) // 2 if centre_as_convolution else kh // 2)
    ow, left, right = _window(W, kw, mode, (kw - 1) // 2 if centre_as_convolution else kw // 2)
    kernel = in2.flip(0, 1) if flip else in2
    if mode == "valid":  # no boundary: a kernel larger than the image only meets it where both are defined
        boundary, fillvalue = "fill", 0
    B = batch.numel()
    if B == 0:
        return in1.new_zeros(*batch, oh, ow) + 0 * kernel.sum()
    x = in1.reshape(1, B, H, W)
    if boundary == "fill" and fillvalue != 0:
        # Padding with c is zero padding of (x - c), plus c times the kernel's sum at every output.
        x = x - fillvalue
    out = functional.conv2d(x, kernel.expand(B, 1, kh, kw), None, 1, (left, right, top, bottom), 1, B,
                            padding_mode=_BOUNDARIES[boundary])
    if boundary == "fill" and fillvalue != 0:
        out = out + fillvalue * kernel.sum()
    return out.reshape(*batch, oh, ow)


def convolve2d(in1: Tensor, in2: Tensor, mode: str = "full", boundary: str = "fill",
               fillvalue: float = 0) -> Tensor:
    """scipy.signal.convolve2d on tensors: the true (flipped) 2-D convolution of each image in in1 (..., H, W) with
    the 2-D kernel in2. mode: 'full', 'same' (the size of in1, centred as scipy does) or 'valid'; boundary: 'fill'
    (with fillvalue), 'wrap' or 'symm'. Differentiable in in1 and in2."""
    return _filter2d(in1, in2, mode, boundary, fillvalue, True, "convolve2d")


def correlate2d(in1: Tensor, in2: Tensor, mode: str = "full", boundary: str = "fill",
                fillvalue: float = 0) -> Tensor:
    """scipy.signal.correlate2d on tensors (real values): convolve2d without the flip, centred as scipy does."""
    return _filter2d(in1, in2, mode, boundary, fillvalue, False, "correlate2d")


def convolve(in1: Tensor, in2: Tensor, mode: str = "full") -> Tensor:
    """scipy.signal.convolve for 1-D signals, on tensors: each signal in in1 (..., n) convolved with the 1-D in2."""
    _check(in1, in2, 1, mode, "convolve")
    return _filter2d(in1.unsqueeze(-2), in2.unsqueeze(0), mode, "fill", 0, True, "convolve", True).squeeze(-2)


def correlate(in1: Tensor, in2: Tensor, mode: str = "full") -> Tensor:
    """scipy.signal.correlate for 1-D real signals, on tensors: convolve without the flip."""
    _check(in1, in2, 1, mode, "correlate")
    return _filter2d(in1.unsqueeze(-2), in2.unsqueeze(0), mode, "fill", 0, False, "correlate", True).squeeze(-2)
