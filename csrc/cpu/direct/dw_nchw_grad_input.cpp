// Depthwise 3x3 / 5x5 at stride 2, zero padding, rows with unit stride: the gather form of the adjoint in the input.
#include "cpu/direct/common.h"
#include "cpu/direct/dw_nchw.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// Depthwise K x K, stride 2, zero padding: the gather form of the adjoint, one register per gx vector. gx[ih, iw]
// sums w[i, j] * gy[oh, ow] over the taps with 2 oh + i = ih + pad_t and 2 ow + j = iw + pad_l: along a row, every
// other lane has a gy element for a given j, so the tap reads gy "zero-stuffed", 8 elements spread to alternate
// lanes by an expanding load. A tile of R gx rows starts where ih + pad_t is even, so which gy row feeds which
// (gx row, tap row) is known at compile time, as in depthwise_tile; each loaded gy vector feeds every pair.
template <typename T, int K, int R>
inline void depthwise_grad_input_tile(const ConvGeometry& g, int64_t gy_row, int64_t gx_row, const T* gy,
                                      const T* w, int64_t ih0, int64_t q, T* gx) {
  constexpr int V = Vec<T>::size, VMIN = -(K - 1) / 2, VMAX = (R - 1) / 2;
  const Mask all = lane_range(0, V, V), even = Mask(0x55555555) & all;
  const int64_t ohb = (ih0 + g.pad_t) / 2;  // gy row v = 0 of the tile; gx row r reads gy row ohb + v at i = r - 2v
  Vec<T> acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = Vec<T>::zero();
#pragma GCC unroll 5
  for (int j = 0; j < K; ++j) {
    const int64_t m0 = q + g.pad_l - j;  // lane l reads gy column (m0 + l) / 2 where m0 + l is even
    const int64_t lo = m0 < 0 ? -m0 : 0, hi = 2 * g.OW - m0 < g.W - q ? 2 * g.OW - m0 : g.W - q;
    const Mask m = lane_range(lo, hi, V) & (m0 & 1 ? all & ~even : even);
    if (!m) continue;
    const T* gyj = gy + (m0 + __builtin_ctz(m)) / 2;
#pragma GCC unroll 8
    for (int v = VMIN; v <= VMAX; ++v) {
      const int64_t oh = ohb + v;
      if (oh < 0 || oh >= g.OH) continue;
      const Vec<T> zv = Vec<T>::expand(gyj + oh * gy_row, m);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const int i = r - 2 * v;
        if (i >= 0 && i < K) acc[r] = fma(Vec<T>::set1(w[i * K + j]), zv, acc[r]);
      }
    }
  }
  const Mask out = lane_range(0, g.W - q, V);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const int64_t ih = ih0 + r;
    if (ih < 0 || ih >= g.H) continue;
    if (out == all) acc[r].store(gx + ih * gx_row + q);
    else acc[r].store(gx + ih * gx_row + q, out);
  }
}

template <typename T, int K>
void depthwise_grad_input_s2(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs) {
  constexpr int V = Vec<T>::size, R = tile_vectors(1) / 2 * 2;  // even, so every tile starts on the same parity
  parallel_for(0, g.N * g.C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / g.C, c = item % g.C;
      const T* gyc = gy + n * gys.n + c * gys.c;
      T* gxc = gx + n * gxs.n + c * gxs.c;
      for (int64_t ih0 = -(g.pad_t & 1); ih0 < g.H; ih0 += R)
        for (int64_t q = 0; q < g.W; q += V)
          depthwise_grad_input_tile<T, K, R>(g, gys.h, gxs.h, gyc, w + c * K * K, ih0, q, gxc);
    }
  });
}

template <typename T>
void dw_nchw_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs, void*) {
  const auto f = g.kh == 3 ? &depthwise_grad_input_s2<T, 3> : &depthwise_grad_input_s2<T, 5>;
  f(g, gy, gys, w, gx, gxs);
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(dw_nchw_grad_input, grad_input)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
