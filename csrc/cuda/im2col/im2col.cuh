// The im2col family's kernels around the GEMM (cuBLAS, through torch's bmm): the gather of a chunk of images into
// columns, its adjoint (col2im, a gather through the inverse padding map: no atomics), and the reorder between the
// output tensor and the GEMM's rows. Every group's GEMM is one batch entry of a single bmm over the chunk.
//   cols  (groups, C / groups * kh * kw, N * OH * OW), row (c, i, j), column (n, oh, ow)
//   rows  (groups, K / groups, N * OH * OW), the GEMM's product W_g cols_g (forward) or its gy operand (backward)
#pragma once

#include "cuda/device.cuh"

namespace torchconv::cuda {

template <typename T>
__global__ void im2col(const CudaParams p) {
  const ConvGeometry& g = p.g;
  const T* x = static_cast<const T*>(p.x);
  T* cols = static_cast<T*>(p.cols);
  const int64_t columns = g.out_pixels(), total = g.col_rows() * columns;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    const int64_t col = e % columns, row = e / columns;  // row = c * kh * kw + i * kw + j over all groups
    const int64_t ow = col % g.OW, oh = col / g.OW % g.OH, n = col / g.OW / g.OH;
    const int64_t j = row % g.kw, i = row / g.kw % g.kh, c = row / g.kw / g.kh;
    store(cols + e, tap(x, p.xs, n, c, g.in_row(oh, i), g.in_col(ow, j)));
  }
}

template <typename T>
__global__ void col2im(const CudaParams p) {
  const ConvGeometry& g = p.g;
  const T* cols = static_cast<const T*>(p.cols);
  T* gx = static_cast<T*>(p.out);
  const int64_t columns = g.out_pixels(), total = g.N * g.C * g.H * g.W;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    const int64_t iw = e % g.W, ih = e / g.W % g.H, c = e / g.W / g.H % g.C, n = e / g.W / g.H / g.C;
    acc_t<T> acc = 0;
    for_each_reader(g, ih, iw, [&](int64_t i, int64_t oh, int64_t j, int64_t ow) {
      acc += acc_t<T>(load(cols + ((c * g.kh + i) * g.kw + j) * columns + (n * g.OH + oh) * g.OW + ow));
    });
    store(gx + at(p.os, n, c, ih, iw), acc);
  }
}

// kToOutput: rows (+ bias) -> out, else y -> rows. Consecutive threads walk the rows' columns, which coalesces the
// rows and an NCHW tensor; a channels_last one is read or written with the channel stride.
template <typename T, bool kToOutput>
__global__ void reorder_rows(const CudaParams p) {
  const ConvGeometry& g = p.g;
  const int64_t columns = g.out_pixels(), total = g.K * columns;
  for (int64_t e = global_thread(); e < total; e += grid_threads()) {
    const int64_t col = e % columns, k = e / columns;  // rows[k / Kg][k % Kg][col] is rows[k][col]
    const int64_t ow = col % g.OW, oh = col / g.OW % g.OH, n = col / g.OW / g.OH;
    if (kToOutput) {
      const T* bias = static_cast<const T*>(p.bias);
      acc_t<T> v = load(static_cast<const T*>(p.cols) + e);
      if (bias) v += acc_t<T>(load(bias + k));
      store(static_cast<T*>(p.out) + at(p.os, n, k, oh, ow), v);
    } else {
      static_cast<T*>(p.cols)[e] = static_cast<const T*>(p.y)[at(p.ys, n, k, oh, ow)];
    }
  }
}

// grad_weight += one chunk's grad_weight: the chunks' sums are added in chunk order, so the result is the same
// bits on every run (an atomic add would not be).
template <typename T>
__global__ void accumulate(const CudaParams p) {
  const ConvGeometry& g = p.g;
  const T* part = static_cast<const T*>(p.cols);
  T* gw = static_cast<T*>(p.out);
  const int64_t total = g.K * g.Cg() * g.kh * g.kw;
  for (int64_t e = global_thread(); e < total; e += grid_threads())
    store(gw + e, acc_t<T>(load(gw + e)) + acc_t<T>(load(part + e)));
}

}  // namespace torchconv::cuda
