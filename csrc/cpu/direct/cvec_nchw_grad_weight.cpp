// A 3x3 grad_weight whose groups hold whole vectors of input channels: input channels along the vector.
#include "cpu/direct/common.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// Where a group's input channels fill whole vectors (ResNeXt's 512@14 and 1024@7 stages have Cg = 16 and 32; dense
// layers) and the kernel is 3x3: gw[k, c0 .. c0 + V, i, j] = sum over positions q of gy[k, q], one element
// broadcast, times x[c0 .. c0 + V, tap (i, j) at q], one vector. This is a GEMM micro-kernel's outer-product
// update, with no horizontal sums and no lane masks, where dense_nchw_grad_weight's walk masks every vector of a padded
// 14x14
// plane and ends each block in horizontal sums. Per channel block and image, x is first packed into a per-thread
// padded plane of V channels per pixel, through the padding map (so every mode is exact and the loop has no edges),
// 64-byte aligned so no load straddles two cache lines. K2 output channels at a time: 9 * K2 accumulators, then 9
// vector loads and K2 broadcasts a position.
template <typename T, int K2>
void grad_weight_by_channel_block(const ConvGeometry& g, const T* xt, int64_t Wp, const T* gyk, Strides4 gys,
                                  T* acc_mem) {
  constexpr int V = Vec<T>::size;
  const int64_t row_step = g.dh * Wp * V, col_step = g.dw * V;
  Vec<T> acc[K2 * 9];
#pragma GCC unroll 27
  for (int a = 0; a < K2 * 9; ++a) acc[a] = Vec<T>::load(acc_mem + a * V);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const T* gr = gyk + oh * gys.h;
    const T* xr = xt + oh * g.sh * Wp * V;  // tap (0, 0) of output row oh
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      Vec<T> gb[K2];
#pragma GCC unroll 3
      for (int kk = 0; kk < K2; ++kk) gb[kk] = Vec<T>::set1(gr[kk * gys.c + ow * gys.w]);
      const T* xq = xr + ow * g.sw * V;
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) {
          const Vec<T> xv = Vec<T>::load(xq + i * row_step + j * col_step);
#pragma GCC unroll 3
          for (int kk = 0; kk < K2; ++kk) acc[kk * 9 + i * 3 + j] = fma(gb[kk], xv, acc[kk * 9 + i * 3 + j]);
        }
    }
  }
#pragma GCC unroll 27
  for (int a = 0; a < K2 * 9; ++a) acc[a].store(acc_mem + a * V);
}

// V channel planes of x (from channel 0 of xc) into xt, (H + pad_t + pad_b) x (W + pad_l + pad_r) pixels of V
// channels, through the padding map.
template <typename T>
void pack_padded_channel_block(const ConvGeometry& g, const T* xc, Strides4 xs, T* xt) {
  constexpr int V = Vec<T>::size;
  const int64_t Hp = g.H + g.pad_t + g.pad_b, Wp = g.W + g.pad_l + g.pad_r, sc = xs.c;
  for (int64_t hp = 0; hp < Hp; ++hp) {
    const int64_t ih = map_index(hp - g.pad_t, g.H, g.mode);
    for (int64_t wp = 0; wp < Wp; ++wp) {
      const int64_t iw = ih < 0 ? -1 : map_index(wp - g.pad_l, g.W, g.mode);
      T* __restrict__ d = xt + (hp * Wp + wp) * V;
      if (iw < 0) {
        for (int c = 0; c < V; ++c) d[c] = T(0);
        continue;
      }
      const T* __restrict__ src = xc + ih * xs.h + iw * xs.w;
#pragma GCC unroll 16
      for (int c = 0; c < V; ++c) d[c] = src[c * sc];
    }
  }
}

// A thread owns (group, block of V input channels), and so gw[., c0 .. c0 + V, ., .] of its group: each sum runs in
template <typename T>
void cvec_nchw_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw, void*) {
  constexpr int V = Vec<T>::size, K2 = simd::kAccumulators >= 16 ? 2 : 1;  // 18 accumulators need 32 registers
  const int64_t Cg = g.Cg(), Kg = g.Kg(), cblocks = Cg / V, Wp = g.W + g.pad_l + g.pad_r;
  parallel_for(0, g.groups * cblocks, 1, [&](int64_t begin, int64_t end) {
    Scratch<T> xt((g.H + g.pad_t + g.pad_b) * Wp * V), acc(Kg * 9 * V);  // acc: (k, tap, lane)
    for (int64_t item = begin; item < end; ++item) {
      const int64_t grp = item / cblocks, c0 = item % cblocks * V;
      for (int64_t a = 0; a < Kg * 9 * V; ++a) acc[a] = T(0);
      for (int64_t n = 0; n < g.N; ++n) {
        pack_padded_channel_block(g, x + n * xs.n + (grp * Cg + c0) * xs.c, xs, xt.p);
        const T* gyg = gy + n * gys.n + grp * Kg * gys.c;
        int64_t k = 0;
        for (; k + K2 <= Kg; k += K2)
          grad_weight_by_channel_block<T, K2>(g, xt.p, Wp, gyg + k * gys.c, gys, acc.p + k * 9 * V);
        for (; k < Kg; ++k) grad_weight_by_channel_block<T, 1>(g, xt.p, Wp, gyg + k * gys.c, gys, acc.p + k * 9 * V);
      }
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t c = 0; c < V; ++c)
          for (int64_t t = 0; t < 9; ++t) gw[((grp * Kg + k) * Cg + c0 + c) * 9 + t] = acc[(k * 9 + t) * V + c];
    }
  });
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(cvec_nchw_grad_weight, grad_weight)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
