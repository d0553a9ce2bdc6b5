// direct_nchw_grad_input, direct_nhwc_grad_input: one thread per input element gathers every (output, tap) that
// read it, through the inverse of the padding map (for_each_reader): no atomics, so the result is the same bits on
// every run, and no padded copy in any padding mode.
#pragma once

#include "cuda/device.cuh"

namespace torchconv::cuda {

template <typename T, bool kNhwc>
__global__ void direct_grad_input(const CudaParams p) {
  const ConvGeometry& g = p.g;
  const T* gy = static_cast<const T*>(p.y);
  const T* w = static_cast<const T*>(p.w);
  T* gx = static_cast<T*>(p.out);
  const int64_t total = g.N * g.C * g.H * g.W, Cg = g.Cg(), Kg = g.Kg(), taps = g.kh * g.kw;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    int64_t n, c, ih, iw, r = e;
    if (kNhwc) {
      c = r % g.C, r /= g.C, iw = r % g.W, r /= g.W, ih = r % g.H, n = r / g.H;
    } else {
      iw = r % g.W, r /= g.W, ih = r % g.H, r /= g.H, c = r % g.C, n = r / g.C;
    }
    const int64_t k0 = c / Cg * Kg, cc = c % Cg;
    acc_t<T> acc = 0;
    for_each_reader(g, ih, iw, [&](int64_t i, int64_t oh, int64_t j, int64_t ow) {
      const T* wk = w + (k0 * Cg + cc) * taps + i * g.kw + j;  // w[k0 + k, cc, i, j] at k = 0
      for (int64_t k = 0; k < Kg; ++k)
        acc += acc_t<T>(load(gy + at(p.ys, n, k0 + k, oh, ow))) * acc_t<T>(load(wk + k * Cg * taps));
    });
    store(gx + at(p.os, n, c, ih, iw), acc);
  }
}

}  // namespace torchconv::cuda
