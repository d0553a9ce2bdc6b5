// Shared by the depthwise NCHW kernels (dw_nchw_<pass>.cpp).
#pragma once

#include "cpu/direct/common.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {

// The MobileNet / EfficientNet layer: one input and one output channel per group, a 3x3 or 5x5 kernel, the same
// stride (1 or 2) both ways, no dilation, zero padding. With one channel there is no channel block to share a
// loaded vector, so the general tile loads one input vector per FMA. Here a tile of R output rows walks the
// (R - 1) * S + K input rows under it once per kernel column: each loaded vector feeds every (row, tap) pair that
// reads it, up to K FMAs at stride 1 (10 loads for 24 FMAs at 3x3, R = 8, instead of 24). Rows outside the
// input are skipped (their taps read zeros), so the top and bottom edges need no separate pass, and rows past the
// output are computed but not stored.
//
// for_each_tile_tap calls f(r, i, j, xv) for every output row r of the tile at (oh0, vector q) and tap (i, j) that
// reads inside the input, with xv the input vector it reads; the loops unroll, so r, i and j are constants in f.
template <typename T, int K, int S, int R, bool Masked, typename F>
__attribute__((always_inline)) inline void for_each_tile_tap(const Walk<T>& wk, const T* x, int64_t oh0, int64_t q,
                                                             const F& f) {
  constexpr int U = (R - 1) * S + K;  // input rows under the tile
  const ConvGeometry& g = wk.g;
  const int64_t ih0 = oh0 * S - g.pad_t, ulo = ih0 < 0 ? -ih0 : 0, uhi = g.H - ih0;
  const Mask* mq = wk.masks.p + q / Vec<T>::size * wk.mcols;
#pragma GCC unroll 5
  for (int j = 0; j < K; ++j) {
    const T* xj = x + ih0 * wk.xs.h + q * S + j - g.pad_l;
#pragma GCC unroll 21
    for (int u = 0; u < U; ++u) {
      if (u < ulo || u >= uhi) continue;
      const Vec<T> xv = simd::load_lanes<S, Masked>(xj + u * wk.xs.h, S, Masked ? mq[j] : 0);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const int i = u - r * S;  // the tap row that output row r reads from input row u
        if (i >= 0 && i < K) f(r, i, j, xv);
      }
    }
  }
}

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
