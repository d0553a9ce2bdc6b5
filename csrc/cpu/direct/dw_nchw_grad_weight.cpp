// Depthwise 3x3 / 5x5, stride 1 or 2, zero padding, rows with unit stride: the adjoint in the weight (dw_nchw.h).
#include "cpu/direct/common.h"
#include "cpu/direct/dw_nchw.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// Depthwise K x K, stride S (1, 2), zero padding: gw[c, i, j] = sum of gy[oh, ow] * x[S oh + i - pad_t,
// S ow + j - pad_l]. All K * K taps of a channel are vector accumulators at once; a tile of R gy rows is loaded,
// then each input row under it is loaded once per kernel column and feeds every (gy row, tap row) pair that reads
// it, as in depthwise_tile (for_each_tile_tap). A thread owns whole channels, so each sum has one order (bitwise
// reproducible).
template <typename T, int K, int S, int R, bool Masked>
inline void depthwise_grad_weight_tile(const Walk<T>& wk, const T* x, const T* gy, int64_t oh0, int64_t q,
                                       Vec<T> (&acc)[K * K]) {
  const Mask out = wk.run_mask(q);
  Vec<T> gv[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const T* p = gy + (oh0 + r) * wk.ys.h + q;
    gv[r] = oh0 + r >= wk.g.OH ? Vec<T>::zero() : Masked ? Vec<T>::load(p, out) : Vec<T>::load(p);
  }
  for_each_tile_tap<T, K, S, R, Masked>(wk, x, oh0, q, [&](int r, int i, int j, Vec<T> xv) __attribute__((always_inline)) {
    acc[i * K + j] = fma(gv[r], xv, acc[i * K + j]);
  });
}

template <typename T, int K, int S>
void depthwise_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
  constexpr int V = Vec<T>::size, R = K == 3 ? tile_vectors(1) : tile_vectors(1) / 2;  // K * K + R + 1 registers
  const Walk<T> wk(g, xs, gys, /*allow_flat=*/false);
  parallel_for(0, g.C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      Vec<T> acc[K * K];
      for (int t = 0; t < K * K; ++t) acc[t] = Vec<T>::zero();
      for (int64_t n = 0; n < g.N; ++n) {
        const T* xc = x + n * xs.n + c * xs.c;
        const T* gyc = gy + n * gys.n + c * gys.c;
        for (int64_t oh0 = 0; oh0 < g.OH; oh0 += R)
          for (int64_t q = 0; q < wk.len; q += V) {
            if (wk.full[q / V]) depthwise_grad_weight_tile<T, K, S, R, false>(wk, xc, gyc, oh0, q, acc);
            else depthwise_grad_weight_tile<T, K, S, R, true>(wk, xc, gyc, oh0, q, acc);
          }
      }
      for (int t = 0; t < K * K; ++t) gw[c * K * K + t] = acc[t].sum();
    }
  });
}

template <typename T>
void dw_nchw_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw, void*) {
  const auto f = g.kh == 3 ? (g.sh == 1 ? &depthwise_grad_weight<T, 3, 1> : &depthwise_grad_weight<T, 3, 2>)
                           : (g.sh == 1 ? &depthwise_grad_weight<T, 5, 1> : &depthwise_grad_weight<T, 5, 2>);
  f(g, x, xs, gy, gys, gw);
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(dw_nchw_grad_weight, grad_weight)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
