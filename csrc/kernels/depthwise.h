// Direct depthwise convolution (groups == C, any channel multiplier K / C), forward and both backward maps.
// No workspace: each thread owns whole output planes (forward), input planes (grad_input) or output channels
// (grad_weight), so nothing is shared, nothing is reduced across threads, and every sum runs in a fixed order.
//
// depthwise.cpp is compiled once per ISA (default, AVX2, AVX-512), each copy in its own inline namespace, and
// exports one table of entry points; cpu_capability.cpp picks a table at run time.
#pragma once

#include "kernels/geometry.h"

namespace torchconv {

inline bool is_depthwise(const ConvGeometry& g) { return g.groups == g.C && g.C > 0; }

template <typename T>
struct DepthwiseKernels {
  // y = conv2d(x, w) + bias; w is contiguous (K, 1, kh, kw), bias may be null.
  void (*forward)(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys);
  // gx = adjoint in x of conv2d, applied to gy. gx is overwritten.
  void (*grad_input)(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs);
  // gw = adjoint in w of conv2d, applied to gy; gw contiguous (K, 1, kh, kw), overwritten.
  void (*grad_weight)(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw);
};

struct DepthwiseTable {
  DepthwiseKernels<float> f32;
  DepthwiseKernels<double> f64;
};

// The table of the ISA in use (see cpu_capability.h).
const DepthwiseTable& depthwise_kernels();

template <typename T>
const DepthwiseKernels<T>& depthwise() {
  if constexpr (sizeof(T) == 4) return depthwise_kernels().f32;
  else return depthwise_kernels().f64;
}

}  // namespace torchconv
