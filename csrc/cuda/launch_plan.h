// How each CUDA kernel is launched: grid, block, shared memory, whether it synchronises. Torch-free host code, read
// by the GPU launchers, the emulator's, and the kernels themselves (the tile counts), so the three never disagree.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/geometry.h"
#include "cuda/kernels.h"

namespace torchconv::cuda {

struct LaunchConfig {
  int64_t grid;
  int block;
  size_t shared_bytes;
  bool barrier;  // the kernel calls __syncthreads (the emulator runs its threads as fibers)
};

inline constexpr int kBlock = 256;
// Every kernel loops over its work with a grid stride, so the grid need not cover it: 2^16 blocks of 256 threads
// fill any current GPU many times over, and no count overflows an unsigned grid dimension.
inline constexpr int64_t kMaxGrid = int64_t(1) << 16;
// reduce_nhwc_grad_weight: a block sums 32 consecutive output channels (one coalesced row of an NHWC pixel) over
// kBlock / 32 pixel lanes; reduce_nchw_grad_weight sums one weight element over kBlock lanes.
inline constexpr int kReduceChannelsNhwc = 32;
// tiled_nchw_forward: output channels of one group a block computes per input pixel it reads.
inline constexpr int kTileChannels = 4;
// The shared memory a block may take without opting in (cudaFuncSetAttribute), on every architecture we build.
inline constexpr size_t kSharedLimit = size_t(48) << 10;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t capped_grid(int64_t blocks) { return blocks < kMaxGrid ? blocks : kMaxGrid; }

// Work items of the tiled forward: (image, group, channel tile, pixel tile).
TC_HOST_DEVICE inline int64_t tiled_forward_tiles(const ConvGeometry& g) {
  return g.N * g.groups * ((g.Kg() + kTileChannels - 1) / kTileChannels) * ((g.OH * g.OW + kBlock - 1) / kBlock);
}
// Work items of the grad_weight reduction: (output channel tile, input channel, tap row, tap column).
TC_HOST_DEVICE inline int64_t reduce_tiles(const ConvGeometry& g, int channels) {
  return ((g.K + channels - 1) / channels) * g.Cg() * g.kh * g.kw;
}
inline size_t tiled_forward_shared(const ConvGeometry& g, size_t acc_size) {
  return size_t(kTileChannels) * size_t(g.Cg() * g.kh * g.kw) * acc_size;
}

// The block of a grad_weight reduction: kBlock threads, or fewer lanes when the batch has fewer output pixels than
// kBlock / channels (a small late layer, a batch of one), so no lane idles through the tree's log2(lanes) barriers.
inline int reduce_block(const ConvGeometry& g, int channels) {
  const int64_t pixels = g.N * g.OH * g.OW;
  int lanes = 1;
  while (lanes * channels < kBlock && lanes < pixels) lanes *= 2;
  return lanes * channels < 32 ? 32 : lanes * channels;  // a warp at least: lanes stays a power of two
}

inline LaunchConfig launch_config(CudaKernel k, const ConvGeometry& g, size_t acc_size) {
  const int64_t out = g.N * g.K * g.OH * g.OW, in = g.N * g.C * g.H * g.W;
  const auto elementwise = [](int64_t n) { return LaunchConfig{capped_grid(ceil_div(n, kBlock)), kBlock, 0, false}; };
  switch (k) {
    case CudaKernel::DirectNchwForward:
    case CudaKernel::DirectNhwcForward:
    case CudaKernel::RowsToOutput:
    case CudaKernel::OutputToRows: return elementwise(out);
    case CudaKernel::DirectNchwGradInput:
    case CudaKernel::DirectNhwcGradInput:
    case CudaKernel::Col2im: return elementwise(in);
    case CudaKernel::Im2col: return elementwise(g.col_rows() * g.out_pixels());
    case CudaKernel::Accumulate: return elementwise(g.K * g.Cg() * g.kh * g.kw);
    case CudaKernel::TiledNchwForward:
      return {capped_grid(tiled_forward_tiles(g)), kBlock, tiled_forward_shared(g, acc_size), true};
    case CudaKernel::ReduceNchwGradWeight:
    case CudaKernel::PlantedMissingBarrier: {
      const int block = reduce_block(g, 1);
      return {capped_grid(reduce_tiles(g, 1)), block, block * acc_size, true};
    }
    case CudaKernel::ReduceNhwcGradWeight: {
      const int block = reduce_block(g, kReduceChannelsNhwc);
      return {capped_grid(reduce_tiles(g, kReduceChannelsNhwc)), block, block * acc_size, true};
    }
    case CudaKernel::Count: break;
  }
  return {0, kBlock, 0, false};
}

}  // namespace torchconv::cuda
