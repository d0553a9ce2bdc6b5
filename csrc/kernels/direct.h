// Direct grouped convolution, forward and both backward maps, for any groups (depthwise is groups == C, with any
// channel multiplier). One kernel walks every group: work items are (image, group, band of output rows, blocks of
// output channels) in the forward, so there is no per-group copy and no workspace. (One exception, where it pays:
// the 3x3 grad_weight with whole vectors of input channels packs one image's block of channels per thread,
// grad_weight_by_channel_applies below.) Each output element is one thread's (forward), as are whole input planes
// of a group (grad_input) and whole output channels or channel blocks of a group (grad_weight), so every sum runs
// in one fixed order: the results are the same bits from run to run and for any thread count.
//
// direct.cpp is compiled once per ISA (default, AVX2, AVX-512), each copy in its own inline namespace, and exports
// one table of entry points; cpu_capability.cpp picks a table at run time.
#pragma once

#include "kernels/geometry.h"

namespace torchconv {

// The depthwise kernels' geometry: one channel per group, a 3x3 or 5x5 kernel, stride 1 or 2 both ways, no
// dilation, zero padding (they also need contiguous rows, which the adapters provide).
inline bool depthwise_fast_path_geometry(const ConvGeometry& g) {
  return g.Cg() == 1 && g.Kg() == 1 && g.kh == g.kw && (g.kh == 3 || g.kh == 5) && g.sh == g.sw &&
         (g.sh == 1 || g.sh == 2) && g.dh == 1 && g.dw == 1 && g.mode == PadMode::Zeros;
}

// Whether grad_input runs as a forward over the flipped kernel: zero padding, unit stride, and padding within the
// kernel's extent, so the adjoint is itself a convolution.
inline bool grad_input_is_forward(const ConvGeometry& g) {
  const int64_t ekh = (g.kh - 1) * g.dh, ekw = (g.kw - 1) * g.dw;
  return g.mode == PadMode::Zeros && g.sh == 1 && g.sw == 1 && g.pad_t <= ekh && g.pad_b <= ekh &&
         g.pad_l <= ekw && g.pad_r <= ekw;
}

// Whether grad_input gathers (each gx sum in a register): as a forward, or the depthwise stride-2 tile. Otherwise
// it scatters, reading and writing gx once per tap.
inline bool direct_grad_input_gathers(const ConvGeometry& g) {
  return grad_input_is_forward(g) || (depthwise_fast_path_geometry(g) && g.sh == 2);
}

// Whether the direct grad_weight runs with input channels along the vector (grad_weight_by_channel in direct.cpp):
// a 3x3 kernel, and a group's input channels filling whole 64-byte vectors (so whole vectors on every ISA). Each
// thread packs one image's block of V channels, padded, which must fit in half of Zen 4's 1 MiB L2 (up to about
// 90 x 90 pixels); it also keeps Kg x 9 accumulators V wide. grad_weight_by_channel_bytes: both, per thread, at the
// widest vector (64 bytes).
inline int64_t grad_weight_by_channel_bytes(const ConvGeometry& g) {
  return ((g.H + g.pad_t + g.pad_b) * (g.W + g.pad_l + g.pad_r) + g.Kg() * 9) * 64;
}
inline bool grad_weight_by_channel_applies(const ConvGeometry& g, size_t elem_size) {
  const int64_t hp = g.H + g.pad_t + g.pad_b, wp = g.W + g.pad_l + g.pad_r;  // each below 2^62 (make_geometry)
  constexpr int64_t kMaxPixels = (int64_t(512) << 10) / 64;
  return g.kh == 3 && g.kw == 3 && g.Cg() > 0 && g.Cg() * int64_t(elem_size) % 64 == 0 && hp <= kMaxPixels &&
         wp <= kMaxPixels && hp * wp <= kMaxPixels;
}

template <typename T>
struct DirectKernels {
  // y = conv2d(x, w) + bias; w is contiguous (K, C / groups, kh, kw), bias may be null.
  void (*forward)(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys);
  // gx = adjoint in x of conv2d, applied to gy. gx is overwritten.
  void (*grad_input)(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs);
  // gw = adjoint in w of conv2d, applied to gy; gw contiguous (K, C / groups, kh, kw), overwritten.
  void (*grad_weight)(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw);
};

struct DirectTable {
  DirectKernels<float> f32;
  DirectKernels<double> f64;
  // The fp32 FMA throughput of the same vector code on `threads` threads, in GFLOP/s: the peak the kernels are
  // measured against (bench/bench.py's % of peak column).
  double (*fma_peak_gflops)(int threads);
};

// The table of the ISA in use (see cpu_capability.h).
const DirectTable& direct_kernels();

template <typename T>
const DirectKernels<T>& direct() {
  if constexpr (sizeof(T) == 4) return direct_kernels().f32;
  else return direct_kernels().f64;
}

}  // namespace torchconv
