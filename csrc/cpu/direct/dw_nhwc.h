// Shared by the depthwise channels_last kernels (dw_nhwc_<pass>.cpp).
#pragma once

#include "cpu/direct/common.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {

// A depthwise layer (one input and one output channel per group) on channels_last tensors: vectors run along C,
// where neighbouring lanes are neighbouring channels in memory. A pixel's tap is then one load whatever the stride,
// dilation or padding mode (the padding map moves the pixel, once for all its channels), and short rows waste no
// lanes. The kernel is read as a (tap, channel) table, transposed once per call (C * kh * kw elements).

// The kernel columns the register-tiled loops below know at compile time: 3 or 5, unit column dilation, column
// stride 1 or 2. by_width_and_stride(g, f) is f(Constant<kw>, Constant<sw>) for such a layer, e.g. the instance of
// a kernel template to run.
inline bool along_c_tiled_columns(const ConvGeometry& g) {
  return g.dw == 1 && (g.kw == 3 || g.kw == 5) && (g.sw == 1 || g.sw == 2);
}
// The backward tiles also hold a K x K kernel's taps (rows, too) at compile time.
inline bool along_c_tiled_square(const ConvGeometry& g) { return along_c_tiled_columns(g) && g.kh == g.kw; }

template <typename F>
auto by_width_and_stride(const ConvGeometry& g, const F& f) {
  return g.kw == 3 ? (g.sw == 1 ? f(Constant<3>{}, Constant<1>{}) : f(Constant<3>{}, Constant<2>{}))
                   : (g.sw == 1 ? f(Constant<5>{}, Constant<1>{}) : f(Constant<5>{}, Constant<2>{}));
}

// One vector of channels from p: every lane, or (Masked, for a last, partial block of channels) the lanes of m.
template <bool Masked, typename T>
__attribute__((always_inline)) inline Vec<T> load_channels(const T* p, Mask m) {
  return Masked ? Vec<T>::load(p, m) : Vec<T>::load(p);
}
template <bool Masked, typename T>
__attribute__((always_inline)) inline void store_channels(Vec<T> v, T* p, Mask m) {
  Masked ? v.store(p, m) : v.store(p);
}

template <typename T>
void fill_taps_by_channel(const ConvGeometry& g, const T* w, T* table) {
  const int64_t taps = g.kh * g.kw;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t q = 0; q < taps; ++q) table[q * g.C + c] = w[c * taps + q];
}

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
