// Direct depthwise convolution (groups == C, any channel multiplier K / C), forward and both backward maps.
// No workspace: each thread owns whole output planes (forward), input planes (grad_input) or weight taps
// (grad_weight), so nothing is shared, nothing is reduced across threads, and every sum runs in a fixed order.
#pragma once

#include "kernels/geometry.h"

namespace torchconv {

inline bool is_depthwise(const ConvGeometry& g) { return g.groups == g.C && g.Cg() == 1 && g.C > 0; }

// y = conv2d(x, w) + bias; w is contiguous (K, 1, kh, kw), bias may be null.
template <typename T>
void depthwise_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys);

// gx = adjoint in x of conv2d, applied to gy. gx is overwritten.
template <typename T>
void depthwise_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs);

// gw = adjoint in w of conv2d, applied to gy; gw contiguous (K, 1, kh, kw), overwritten.
template <typename T>
void depthwise_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw);

}  // namespace torchconv
