// The GPU's launch table: every kernel of csrc/cuda/ compiled by nvcc, launched with cudaLaunchKernel on the
// caller's stream. Torch-free (torch headers cost nvcc seconds a file, and the kernels need none).
#include <cuda_runtime.h>

#include "cuda/launch_table.h"

namespace torchconv::cuda {
namespace {

struct GpuLaunch {
  static const char* run(const char*, Kernel kernel, const LaunchConfig& c, const CudaParams& p, void* stream) {
    void* args[] = {const_cast<CudaParams*>(&p)};
    const cudaError_t e = cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(unsigned(c.grid)),
                                           dim3(unsigned(c.block)), args, c.shared_bytes,
                                           static_cast<cudaStream_t>(stream));
    return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
  }
};

}  // namespace

const LaunchTable& gpu_launchers() {
  static const LaunchTable table = make_launch_table<GpuLaunch>();
  return table;
}

}  // namespace torchconv::cuda
