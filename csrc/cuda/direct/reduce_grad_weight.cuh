// reduce_nchw_grad_weight, reduce_nhwc_grad_weight: grad_weight as block reductions, with no float atomics, so two
// runs give the same bits (torch's own depthwise backward does the same). A block owns `channels` weight elements
// that differ in the output channel only (1 in NCHW; 32 in NHWC, which coalesces the reads of a pixel's channels);
// its lanes split the batch's output pixels in a fixed way and a fixed tree adds the lanes' sums.
#pragma once

#include "cuda/device.cuh"
#include "cuda/launch_plan.h"

namespace torchconv::cuda {

// kPlantMissingBarrier: the tree without its barrier, for the emulator's own test (the result must come out wrong).
template <typename T, bool kNhwc, bool kPlantMissingBarrier = false>
__global__ void reduce_grad_weight(const CudaParams p) {
  using A = acc_t<T>;
  constexpr int channels = kNhwc ? kReduceChannelsNhwc : 1;
  const ConvGeometry& g = p.g;
  const T* x = static_cast<const T*>(p.x);
  const T* gy = static_cast<const T*>(p.y);
  T* gw = static_cast<T*>(p.out);
  TC_SHARED_BYTES(shared);
  A* partial = reinterpret_cast<A*>(shared);  // [lanes][channels]
  const int lanes = int(blockDim.x) / channels, q = int(threadIdx.x) % channels, lane = int(threadIdx.x) / channels;
  const int64_t Cg = g.Cg(), pixels = g.N * g.OH * g.OW, tiles = reduce_tiles(g, channels);
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {  // uniform across the block: the barriers stay matched
    int64_t r = t;
    const int64_t j = r % g.kw;
    r /= g.kw;
    const int64_t i = r % g.kh;
    r /= g.kh;
    const int64_t cc = r % Cg, k = r / Cg * channels + q;
    A acc = 0;
    if (k < g.K) {
      const int64_t c = k / g.Kg() * Cg + cc;
      for (int64_t e = lane; e < pixels; e += lanes) {
        const int64_t ow = e % g.OW, oh = e / g.OW % g.OH, n = e / g.OW / g.OH;
        acc += A(load(gy + at(p.ys, n, k, oh, ow))) * tap(x, p.xs, n, c, g.in_row(oh, i), g.in_col(ow, j));
      }
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int half = lanes / 2; half > 0; half /= 2) {  // lanes is a power of two
      if (lane < half) partial[threadIdx.x] += partial[threadIdx.x + half * channels];
      if (!kPlantMissingBarrier) __syncthreads();
    }
    if (lane == 0 && k < g.K) store(gw + ((k * Cg + cc) * g.kh + i) * g.kw + j, partial[q]);
    __syncthreads();  // the next tile overwrites the partial sums
  }
}

}  // namespace torchconv::cuda
