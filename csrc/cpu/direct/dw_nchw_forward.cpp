// Depthwise 3x3 / 5x5, stride 1 or 2, zero padding, rows with unit stride (dw_nchw.h).
#include "cpu/direct/common.h"
#include "cpu/direct/dw_nchw.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

template <typename T, int K, int S, int R, bool Masked>
inline void depthwise_tile(const Walk<T>& wk, const T* x, const T* w, T bias, int64_t oh0, int64_t q, T* y) {
  const ConvGeometry& g = wk.g;
  Vec<T> acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = Vec<T>::set1(bias);
  for_each_tile_tap<T, K, S, R, Masked>(wk, x, oh0, q, [&](int r, int i, int j, Vec<T> xv) __attribute__((always_inline)) {
    acc[r] = fma(Vec<T>::set1(w[i * K + j]), xv, acc[r]);
  });
  const Mask out = wk.run_mask(q);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (oh0 + r >= g.OH) break;
    T* d = y + (oh0 + r) * wk.ys.h + q;
    if (Masked) acc[r].store(d, out);
    else acc[r].store(d);
  }
}

template <typename T, int K, int S>
void depthwise_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys) {
  constexpr int V = Vec<T>::size, R = tile_vectors(1);
  const Walk<T> wk(g, xs, ys, /*allow_flat=*/false);
  parallel_for(0, g.N * g.C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / g.C, c = item % g.C;
      const T* xc = x + n * xs.n + c * xs.c;
      const T* wc = w + c * K * K;
      const T b = bias ? bias[c] : T(0);
      T* yc = y + n * ys.n + c * ys.c;
      for (int64_t oh0 = 0; oh0 < g.OH; oh0 += R)
        for (int64_t q = 0; q < wk.len; q += V) {
          if (wk.full[q / V]) depthwise_tile<T, K, S, R, false>(wk, xc, wc, b, oh0, q, yc);
          else depthwise_tile<T, K, S, R, true>(wk, xc, wc, b, oh0, q, yc);
        }
    }
  });
}

template <typename T>
void dw_nchw_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys,
                     void*) {
  const auto f = g.kh == 3 ? (g.sh == 1 ? &depthwise_forward<T, 3, 1> : &depthwise_forward<T, 3, 2>)
                           : (g.sh == 1 ? &depthwise_forward<T, 5, 1> : &depthwise_forward<T, 5, 2>);
  f(g, x, xs, w, bias, y, ys);
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(dw_nchw_forward, forward)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
