// NaN and Inf as torch has them. torch (every backend) and the im2col kernels multiply every tap, and 0 * NaN =
// 0 * Inf = NaN: a non-finite weight or output gradient that meets zero padding makes NaN there, while the adjoint
// (grad_input) drops what falls in the padding. The direct kernels skip padded taps and compute masked lanes they
// do not keep, so with non-finite values they can differ from torch either way. Each check below runs after a
// direct pass and says whether the pass must be redone by im2col; it first reads values the pass has computed, so
// when every value is finite it costs O(channels) reads (forward, grad_input) or one read of gw (grad_weight).
// Torch-free, compiled once.
#pragma once

#include "common/geometry.h"

namespace torchconv {

// Whether the weight (contiguous (K, C / groups, kh, kw)) has a non-finite value; y: the direct forward's output.
template <typename T>
bool forward_weight_nonfinite(const ConvGeometry& g, const T* w, const T* y, Strides4 ys);

// The same for grad_input; gx: the direct pass's result.
template <typename T>
bool grad_input_weight_nonfinite(const ConvGeometry& g, const T* w, const T* gx, Strides4 gxs);

// Whether the direct grad_weight gw (contiguous) may differ from torch's: some of it is non-finite, or a
// non-finite gy sits at an output whose every tap is zero padding (it leaves no trace in the direct sums).
template <typename T>
bool grad_weight_nonfinite(const ConvGeometry& g, const T* gy, Strides4 gys, const T* gw);

}  // namespace torchconv
