// The launch table, built from the kernel sources by a launch policy: cuda/launch.cu includes this with the GPU's
// (cudaLaunchKernel), cuda/emulation/launch_emulated.cpp with the emulator's. Included by those two files only.
#pragma once

#include <utility>

#include "cuda/device.cuh"
#include "cuda/direct/direct_forward.cuh"
#include "cuda/direct/direct_grad_input.cuh"
#include "cuda/direct/reduce_grad_weight.cuh"
#include "cuda/direct/tiled_nchw_forward.cuh"
#include "cuda/im2col/im2col.cuh"
#include "cuda/launch_plan.h"

namespace torchconv::cuda {

using Kernel = void (*)(CudaParams);

template <typename T>
Kernel kernel_of(CudaKernel k) {
  switch (k) {
    case CudaKernel::DirectNchwForward: return &direct_forward<T, false>;
    case CudaKernel::DirectNhwcForward: return &direct_forward<T, true>;
    case CudaKernel::TiledNchwForward: return &tiled_nchw_forward<T>;
    case CudaKernel::DirectNchwGradInput: return &direct_grad_input<T, false>;
    case CudaKernel::DirectNhwcGradInput: return &direct_grad_input<T, true>;
    case CudaKernel::ReduceNchwGradWeight: return &reduce_grad_weight<T, false>;
    case CudaKernel::ReduceNhwcGradWeight: return &reduce_grad_weight<T, true>;
    case CudaKernel::Im2col: return &im2col<T>;
    case CudaKernel::Col2im: return &col2im<T>;
    case CudaKernel::RowsToOutput: return &reorder_rows<T, true>;
    case CudaKernel::OutputToRows: return &reorder_rows<T, false>;
    case CudaKernel::Accumulate: return &accumulate<T>;
    case CudaKernel::PlantedMissingBarrier: return &reduce_grad_weight<T, false, true>;
    case CudaKernel::Count: break;
  }
  return nullptr;
}

// Policy::run(name, kernel, config, params, stream) -> null or the error text.
template <typename Policy, typename T, int K>
const char* launch(const CudaParams& p, void* stream) {
  constexpr auto k = static_cast<CudaKernel>(K);
  const LaunchConfig c = launch_config(k, p.g, sizeof(acc_t<T>));
  if (c.grid == 0) return nullptr;
  return Policy::run(kCudaKernelNames[K], kernel_of<T>(k), c, p, stream);
}

template <typename Policy, typename T, int... K>
void fill_row(LaunchTable& t, CudaDtype d, std::integer_sequence<int, K...>) {
  ((t.fn[K][static_cast<int>(d)] = &launch<Policy, T, K>), ...);
}

template <typename Policy>
LaunchTable make_launch_table() {
  LaunchTable t{};
  const auto ids = std::make_integer_sequence<int, kNumCudaKernels>{};
  fill_row<Policy, float>(t, CudaDtype::Float, ids);
  fill_row<Policy, double>(t, CudaDtype::Double, ids);
  fill_row<Policy, Half>(t, CudaDtype::Half, ids);
  fill_row<Policy, BFloat16>(t, CudaDtype::BFloat16, ids);
  return t;
}

}  // namespace torchconv::cuda
