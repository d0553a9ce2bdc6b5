// The CUDA kernels as the adapters see them: one id per launchable kernel, the plain params struct every kernel
// takes, and the launch table (one torch-free launcher per kernel and dtype). Torch-free and nvcc-safe: the table
// is built twice from the same kernel sources, by nvcc for the GPU (cuda/launch.cu) and by g++ for the emulator
// (cuda/emulation/launch_emulated.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/geometry.h"

namespace torchconv::cuda {

// Every launchable kernel: (enum value, name). Names follow <family>_<layout>_<pass> as the CPU's do; the im2col
// family's steps (the gather into columns, the scatter back, the GEMM rows' reorder) are launches of one plan row.
#define TORCHCONV_CUDA_KERNELS(X)                  \
  X(DirectNchwForward, direct_nchw_forward)        \
  X(DirectNhwcForward, direct_nhwc_forward)        \
  X(TiledNchwForward, tiled_nchw_forward)          \
  X(DirectNchwGradInput, direct_nchw_grad_input)   \
  X(DirectNhwcGradInput, direct_nhwc_grad_input)   \
  X(ReduceNchwGradWeight, reduce_nchw_grad_weight) \
  X(ReduceNhwcGradWeight, reduce_nhwc_grad_weight) \
  X(Im2col, im2col)                                \
  X(Col2im, col2im)                                \
  X(RowsToOutput, rows_to_output)                  \
  X(OutputToRows, output_to_rows)                  \
  X(Accumulate, accumulate)                        \
  X(PlantedMissingBarrier, planted_missing_barrier)

#define TORCHCONV_CUDA_KERNEL_ID(id, name) id,
enum class CudaKernel : int { TORCHCONV_CUDA_KERNELS(TORCHCONV_CUDA_KERNEL_ID) Count };
#undef TORCHCONV_CUDA_KERNEL_ID
inline constexpr int kNumCudaKernels = static_cast<int>(CudaKernel::Count);
#define TORCHCONV_CUDA_KERNEL_NAME(id, name) #name,
inline constexpr const char* kCudaKernelNames[] = {TORCHCONV_CUDA_KERNELS(TORCHCONV_CUDA_KERNEL_NAME)};
#undef TORCHCONV_CUDA_KERNEL_NAME

// The element types, in the launch table's order.
enum class CudaDtype : int { Float, Double, Half, BFloat16, Count };
inline constexpr int kNumCudaDtypes = static_cast<int>(CudaDtype::Count);

// What one launch reads and writes. Each kernel uses the fields its pass has:
//   forward       x (xs), w, bias            -> out (os)
//   grad_input    y = grad_output (ys), w    -> out = grad_input (os)
//   grad_weight   x (xs), y = grad_output (ys) -> out = grad_weight, contiguous (K, C / groups, kh, kw)
//   im2col        x (xs)                     -> cols (groups, C / groups * kh * kw, N * OH * OW)
//   col2im        cols                       -> out = grad_input (os)
//   rows_to_output  cols = GEMM rows (groups, K / groups, N * OH * OW), bias -> out (os)
//   output_to_rows  y (ys)                   -> cols = GEMM rows
//   accumulate    cols (a chunk's grad_weight) -> out (grad_weight) += cols
// g is the geometry of the images this launch covers (a chunk of the batch for the im2col family).
struct CudaParams {
  ConvGeometry g;
  const void* x;
  Strides4 xs;
  const void* w;
  const void* bias;
  const void* y;
  Strides4 ys;
  void* out;
  Strides4 os;
  void* cols;
};

// Launches kernel k on `stream` (a cudaStream_t; ignored by the emulator). Returns null, or the CUDA error text.
using LaunchFn = const char* (*)(const CudaParams& p, void* stream);
struct LaunchTable {
  LaunchFn fn[kNumCudaKernels][kNumCudaDtypes];
};

// The GPU's table (cuda/launch.cu), present when the build has CUDA; the emulator's, in every build.
const LaunchTable& gpu_launchers();
const LaunchTable& emulated_launchers();

}  // namespace torchconv::cuda
