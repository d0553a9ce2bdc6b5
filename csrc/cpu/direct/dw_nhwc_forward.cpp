// Depthwise on channels_last tensors, any kernel, stride, dilation and padding mode: vectors along C (dw_nhwc.h).
#include "cpu/direct/common.h"
#include "cpu/direct/dw_nhwc.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// Output pixels [ow, ow + B) of one row, for the channels [c0, c0 + V), where every tap reads inside the input.
// rows[i]: input row of tap row i (-1: zero padding, skipped). With the kernel width K and column stride S known
// (K > 0, no column dilation), each of the (B - 1) * S + K input vectors under the block is loaded once and fed to
// every (pixel, tap column) pair that reads it: at 3x3 stride 1, 10 loads for 24 FMAs instead of 24. Otherwise each
// tap loads its own vector.
template <typename T, bool Masked, int K, int S, int B>
inline void along_c_block(const ConvGeometry& g, const T* xn, Strides4 xs, const T* table, Vec<T> init,
                          const int64_t* rows, int64_t c0, Mask m, int64_t ow, T* yr, Strides4 ys) {
  constexpr int U = (B - 1) * S + K;
  Vec<T> acc[B];
#pragma GCC unroll 8
  for (int b = 0; b < B; ++b) acc[b] = init;
  for (int64_t i = 0; i < g.kh; ++i) {
    if (rows[i] < 0) continue;
    const T* xr = xn + rows[i] * xs.h + (ow * g.sw - g.pad_l) * xs.w + c0;
    const T* wr = table + i * g.kw * g.C + c0;
    if constexpr (K > 0) {
      Vec<T> wv[K];
#pragma GCC unroll 8
      for (int j = 0; j < K; ++j) wv[j] = load_channels<Masked>(wr + j * g.C, m);
#pragma GCC unroll 32
      for (int u = 0; u < U; ++u) {
        const Vec<T> xv = load_channels<Masked>(xr + u * xs.w, m);
#pragma GCC unroll 8
        for (int j = 0; j < K; ++j)  // input column u is tap column j of pixel b = (u - j) / S
          if (u >= j && (u - j) % S == 0 && (u - j) / S < B) acc[(u - j) / S] = fma(wv[j], xv, acc[(u - j) / S]);
      }
    } else {
      for (int64_t j = 0; j < g.kw; ++j) {
        const Vec<T> wv = load_channels<Masked>(wr + j * g.C, m);
        const T* xj = xr + j * g.dw * xs.w;
#pragma GCC unroll 8
        for (int b = 0; b < B; ++b) acc[b] = fma(wv, load_channels<Masked>(xj + b * g.sw * xs.w, m), acc[b]);
      }
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < B; ++b) {
    T* d = yr + (ow + b) * ys.w + c0;
    store_channels<Masked>(acc[b], d, m);
  }
}

// One output row: the interior in blocks of 8 pixels, then 4 (7x7 and 14x14 planes have interiors of 5 and 12), then
// 1, and the edge pixels one at a time through the padding map.
template <typename T, bool Masked, int K, int S>
void along_c_forward_row(const ConvGeometry& g, const T* xn, Strides4 xs, const T* table, const T* bias,
                         const int64_t* rows, int64_t c0, T* yr, Strides4 ys) {
  constexpr int V = Vec<T>::size;
  const Mask m = lane_range(0, g.C - c0, V);
  const Vec<T> init = bias ? load_channels<Masked>(bias + c0, m) : Vec<T>::zero();
  int64_t lo = 0, hi = 0;
  g.interior_cols_all_taps(lo, hi);
  auto edge = [&](int64_t ow) {
    Vec<T> acc = init;
    for (int64_t i = 0; i < g.kh; ++i) {
      if (rows[i] < 0) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = g.in_col(ow, j);
        if (iw < 0) continue;
        const Vec<T> wv = load_channels<Masked>(table + (i * g.kw + j) * g.C + c0, m);
        acc = fma(wv, load_channels<Masked>(xn + rows[i] * xs.h + iw * xs.w + c0, m), acc);
      }
    }
    T* d = yr + ow * ys.w + c0;
    store_channels<Masked>(acc, d, m);
  };
  int64_t ow = 0;
  for (; ow < lo; ++ow) edge(ow);
  for (; ow + 8 <= hi; ow += 8) along_c_block<T, Masked, K, S, 8>(g, xn, xs, table, init, rows, c0, m, ow, yr, ys);
  for (; ow + 4 <= hi; ow += 4) along_c_block<T, Masked, K, S, 4>(g, xn, xs, table, init, rows, c0, m, ow, yr, ys);
  for (; ow < hi; ++ow) along_c_block<T, Masked, K, S, 1>(g, xn, xs, table, init, rows, c0, m, ow, yr, ys);
  for (; ow < g.OW; ++ow) edge(ow);
}

template <typename T, int K, int S>
void along_c_forward_rows(const ConvGeometry& g, const T* x, Strides4 xs, const T* table, const T* bias, T* y,
                          Strides4 ys) {
  constexpr int V = Vec<T>::size;
  parallel_for(0, g.N * g.OH, 1, [&](int64_t begin, int64_t end) {
    Scratch<int64_t> rows(g.kh);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / g.OH, oh = item % g.OH;
      for (int64_t i = 0; i < g.kh; ++i) rows[i] = g.in_row(oh, i);
      const T* xn = x + n * xs.n;
      T* yr = y + n * ys.n + oh * ys.h;
      int64_t c0 = 0;
      for (; c0 + V <= g.C; c0 += V) along_c_forward_row<T, false, K, S>(g, xn, xs, table, bias, rows.p, c0, yr, ys);
      if (c0 < g.C) along_c_forward_row<T, true, K, S>(g, xn, xs, table, bias, rows.p, c0, yr, ys);
    }
  });
}

template <typename T>
void dw_nhwc_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys,
                     void*) {
  Scratch<T> table(g.kh * g.kw * g.C);
  fill_taps_by_channel(g, w, table.p);
  auto rows = &along_c_forward_rows<T, 0, 1>;
  if (along_c_tiled_columns(g))
    rows = by_width_and_stride(g, [](auto k, auto s) { return &along_c_forward_rows<T, k.value, s.value>; });
  rows(g, x, xs, table.p, bias, y, ys);
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(dw_nhwc_forward, forward)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
