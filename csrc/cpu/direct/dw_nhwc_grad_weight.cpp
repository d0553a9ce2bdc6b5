// The adjoint of dw_nhwc_forward in the weight, on channels_last tensors, any kernel, stride and padding mode.
#include "cpu/direct/common.h"
#include "cpu/direct/dw_nhwc.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// A K x K kernel at column stride S, unit column dilation (MobileNet's and EfficientNet's 3x3 and 5x5): all K * K
// taps of a channel block are register accumulators for the whole sum. Interior pixels go B at a time: their B gy
// vectors are loaded once, and each of the (B - 1) * S + K input vectors under them in a kernel row once, feeding
// every (pixel, tap column) pair that reads it (at 3x3 stride 1, B = 8: 38 loads for 72 FMAs). Rows come through
// in_row and edge pixels through in_col, so every padding mode is exact. A thread owns channel blocks, so each sum
// runs in one fixed order.
template <typename T, bool Masked, int K, int S>
void along_c_grad_weight_block(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, int64_t c0,
                               T* gw) {
  constexpr int V = Vec<T>::size, Free = 2 * simd::kAccumulators - K * K - 1;
  constexpr int B = Free >= 8 ? 8 : Free >= 4 ? 4 : Free >= 2 ? 2 : 1;  // gy vectors in registers with the taps
  const Mask m = lane_range(0, g.C - c0, V);
  int64_t lo = 0, hi = 0;
  g.interior_cols_all_taps(lo, hi);
  Vec<T> acc[K * K];
#pragma GCC unroll 25
  for (int t = 0; t < K * K; ++t) acc[t] = Vec<T>::zero();
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const T* xr[K];  // input row of each kernel row, at column 0, or null in zero padding
#pragma GCC unroll 5
      for (int i = 0; i < K; ++i) {
        const int64_t ih = g.in_row(oh, i);
        xr[i] = ih < 0 ? nullptr : x + n * xs.n + ih * xs.h + c0;
      }
      const T* gyr = gy + n * gys.n + oh * gys.h + c0;
      auto edge = [&](int64_t ow) __attribute__((always_inline)) {
        const Vec<T> gv = load_channels<Masked>(gyr + ow * gys.w, m);
#pragma GCC unroll 5
        for (int i = 0; i < K; ++i) {
          if (!xr[i]) continue;
#pragma GCC unroll 5
          for (int j = 0; j < K; ++j) {
            const int64_t iw = g.in_col(ow, j);
            if (iw >= 0) acc[i * K + j] = fma(gv, load_channels<Masked>(xr[i] + iw * xs.w, m), acc[i * K + j]);
          }
        }
      };
      int64_t ow = 0;
      for (; ow < lo; ++ow) edge(ow);
      for (; ow + B <= hi; ow += B) {
        constexpr int U = (B - 1) * S + K;
        Vec<T> gv[B];
#pragma GCC unroll 8
        for (int b = 0; b < B; ++b) gv[b] = load_channels<Masked>(gyr + (ow + b) * gys.w, m);
#pragma GCC unroll 5
        for (int i = 0; i < K; ++i) {
          if (!xr[i]) continue;
          const T* xu = xr[i] + (ow * S - g.pad_l) * xs.w;
#pragma GCC unroll 40
          for (int u = 0; u < U; ++u) {
            const Vec<T> xv = load_channels<Masked>(xu + u * xs.w, m);
#pragma GCC unroll 5
            for (int j = 0; j < K; ++j)  // input column u is tap column j of pixel b = (u - j) / S
              if (u >= j && (u - j) % S == 0 && (u - j) / S < B)
                acc[i * K + j] = fma(gv[(u - j) / S], xv, acc[i * K + j]);
          }
        }
      }
      for (; ow < g.OW; ++ow) edge(ow);
    }
  T lanes[K * K][V];
#pragma GCC unroll 25
  for (int t = 0; t < K * K; ++t) acc[t].store(lanes[t]);
  for (int64_t l = 0; l < V && c0 + l < g.C; ++l)
    for (int t = 0; t < K * K; ++t) gw[(c0 + l) * K * K + t] = lanes[t][l];
}

template <typename T, int K, int S>
void along_c_grad_weight_square(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
  constexpr int V = Vec<T>::size;
  parallel_for(0, (g.C + V - 1) / V, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c0 = begin * V; c0 < end * V; c0 += V) {
      if (c0 + V <= g.C) along_c_grad_weight_block<T, false, K, S>(g, x, xs, gy, gys, c0, gw);
      else along_c_grad_weight_block<T, true, K, S>(g, x, xs, gy, gys, c0, gw);
    }
  });
}

// Any other kernel: gw[c, tap] = sum over images and pixels of gy * x at the tap, J taps of a channel block at a
// time as register accumulators. A thread owns channel blocks, so each sum runs in one fixed order.
template <typename T>
void dw_nhwc_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw, void*) {
  if (along_c_tiled_square(g))
    return by_width_and_stride(g, [](auto k, auto s) { return &along_c_grad_weight_square<T, k.value, s.value>; })(
        g, x, xs, gy, gys, gw);
  constexpr int V = Vec<T>::size, J = 9;
  const int64_t blocks = (g.C + V - 1) / V, taps = g.kh * g.kw;
  int64_t lo = 0, hi = 0;
  g.interior_cols_all_taps(lo, hi);
  parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t c0 = item * V;
      const Mask m = lane_range(0, g.C - c0, V);
      for (int64_t t0 = 0; t0 < taps; t0 += J) {
        const int64_t nt = taps - t0 < J ? taps - t0 : J;
        int64_t ti[J], tj[J];
        for (int s = 0; s < J; ++s) ti[s] = (t0 + s) / g.kw, tj[s] = (t0 + s) % g.kw;
        Vec<T> acc[J];
        for (int s = 0; s < J; ++s) acc[s] = Vec<T>::zero();
        for (int64_t n = 0; n < g.N; ++n)
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            // Each slot's input offset in this row, and whether its row is inside (slot s < nt).
            int64_t off[J];
            bool live[J];
            for (int s = 0; s < J; ++s) {
              const int64_t ih = s < nt ? g.in_row(oh, ti[s]) : -1;
              live[s] = ih >= 0;
              off[s] = n * xs.n + ih * xs.h + (tj[s] * g.dw - g.pad_l) * xs.w + c0;
            }
            const T* gyr = gy + n * gys.n + oh * gys.h + c0;
            for (int64_t ow = 0; ow < g.OW; ++ow) {
              const Vec<T> gv = Vec<T>::load(gyr + ow * gys.w, m);
              if (ow >= lo && ow < hi) {
#pragma GCC unroll 9
                for (int s = 0; s < J; ++s)
                  if (live[s]) acc[s] = fma(gv, Vec<T>::load(x + off[s] + ow * g.sw * xs.w, m), acc[s]);
              } else {
#pragma GCC unroll 9
                for (int s = 0; s < J; ++s) {
                  const int64_t iw = live[s] ? g.in_col(ow, tj[s]) : -1;
                  if (iw < 0) continue;
                  const T* p = x + off[s] + (iw - (tj[s] * g.dw - g.pad_l)) * xs.w;
                  acc[s] = fma(gv, Vec<T>::load(p, m), acc[s]);
                }
              }
            }
          }
        for (int64_t s = 0; s < nt; ++s) {
          T lanes[V];
          acc[s].store(lanes);
          for (int64_t l = 0; l < V && c0 + l < g.C; ++l) gw[(c0 + l) * taps + t0 + s] = lanes[l];
        }
      }
    }
  });
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(dw_nhwc_grad_weight, grad_weight)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
