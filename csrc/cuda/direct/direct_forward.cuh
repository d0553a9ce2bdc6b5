// direct_nchw_forward, direct_nhwc_forward: one thread per output element, summing C / groups input channels times
// the taps. The depthwise workhorse (one input channel per output): no shared memory to fill, and consecutive
// threads take consecutive elements of the output's layout, so its reads and writes coalesce (along a row in NCHW,
// along the channels in NHWC).
#pragma once

#include "cuda/device.cuh"

namespace torchconv::cuda {

template <typename T, bool kNhwc>
__global__ void direct_forward(const CudaParams p) {
  const ConvGeometry& g = p.g;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* bias = static_cast<const T*>(p.bias);
  T* y = static_cast<T*>(p.out);
  const int64_t total = g.N * g.K * g.OH * g.OW, Cg = g.Cg(), taps = g.kh * g.kw;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    int64_t n, k, oh, ow, r = e;
    if (kNhwc) {
      k = r % g.K, r /= g.K, ow = r % g.OW, r /= g.OW, oh = r % g.OH, n = r / g.OH;
    } else {
      ow = r % g.OW, r /= g.OW, oh = r % g.OH, r /= g.OH, k = r % g.K, n = r / g.K;
    }
    const int64_t c0 = k / g.Kg() * Cg;
    acc_t<T> acc = bias ? acc_t<T>(load(bias + k)) : acc_t<T>(0);
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = g.in_row(oh, i);
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = g.in_col(ow, j);
        const T* wk = w + k * Cg * taps + i * g.kw + j;
        for (int64_t c = 0; c < Cg; ++c) acc += tap(x, p.xs, n, c0 + c, ih, iw) * acc_t<T>(load(wk + c * taps));
      }
    }
    store(y + at(p.os, n, k, oh, ow), acc);
  }
}

}  // namespace torchconv::cuda
