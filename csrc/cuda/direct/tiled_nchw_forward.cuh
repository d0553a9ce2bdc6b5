// tiled_nchw_forward: grouped and dense layers whose group's filters fit in shared memory. A block takes
// kTileChannels output channels of one group over kBlock pixels of one image: it stages those channels' filters in
// shared memory once, and each thread reads each input value once for all of them.
#pragma once

#include "cuda/device.cuh"
#include "cuda/launch_plan.h"

namespace torchconv::cuda {

template <typename T>
__global__ void tiled_nchw_forward(const CudaParams p) {
  using A = acc_t<T>;
  const ConvGeometry& g = p.g;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* bias = static_cast<const T*>(p.bias);
  T* y = static_cast<T*>(p.out);
  TC_SHARED_BYTES(shared);
  A* filters = reinterpret_cast<A*>(shared);  // [kTileChannels][Cg * kh * kw]
  const int64_t Cg = g.Cg(), Kg = g.Kg(), fsize = Cg * g.kh * g.kw, pixels = g.OH * g.OW;
  const int64_t channel_tiles = (Kg + kTileChannels - 1) / kTileChannels, pixel_tiles = (pixels + kBlock - 1) / kBlock;
  const int64_t tiles = tiled_forward_tiles(g);
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {  // uniform across the block: the barriers stay matched
    int64_t r = t;
    const int64_t pt = r % pixel_tiles;
    r /= pixel_tiles;
    const int64_t ct = r % channel_tiles;
    r /= channel_tiles;
    const int64_t grp = r % g.groups, n = r / g.groups;
    const int64_t k0 = grp * Kg + ct * kTileChannels;
    const int64_t kn = Kg - ct * kTileChannels < kTileChannels ? Kg - ct * kTileChannels : kTileChannels;
    for (int64_t e = threadIdx.x; e < kn * fsize; e += blockDim.x) filters[e] = A(load(w + k0 * fsize + e));
    __syncthreads();
    const int64_t pix = pt * kBlock + threadIdx.x;
    if (pix < pixels) {
      const int64_t oh = pix / g.OW, ow = pix % g.OW;
      A acc[kTileChannels];
      for (int q = 0; q < kTileChannels; ++q) acc[q] = A(0);
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t ih = g.in_row(oh, i);
          for (int64_t j = 0; j < g.kw; ++j) {
            const A v = tap(x, p.xs, n, grp * Cg + c, ih, g.in_col(ow, j));
            const A* f = filters + (c * g.kh + i) * g.kw + j;
            for (int q = 0; q < kTileChannels; ++q)
              if (q < kn) acc[q] += v * f[q * fsize];
          }
        }
      for (int q = 0; q < kTileChannels; ++q)
        if (q < kn) store(y + at(p.os, n, k0 + q, oh, ow), acc[q] + (bias ? A(load(bias + k0 + q)) : A(0)));
    }
    __syncthreads();  // the next tile overwrites the filters
  }
}

}  // namespace torchconv::cuda
