// What the three CUDA adapters share. Each reads as one line: checks (ops/checks.h), allocation, the plan (one row
// of cuda/plan.h), then the launches of that row on raw pointers (cuda/kernels.h). The kernels read every operand
// with its own strides, so no operand is copied. A Backend says where the launches go: the GPU (the CUDA
// registration) or the emulator (the CPU ops inside torchconv.testing.cuda_emulation()).
#pragma once

#include <torch/csrc/stable/accelerator.h>

#include <optional>
#include <string>
#include <vector>

#include "cuda/kernels.h"
#include "cuda/plan.h"
#include "ops/checks.h"

namespace torchconv::cuda {

using torch::headeronly::DeviceType;

struct Backend {
  DeviceType device;
  const LaunchTable* table;
  bool gpu;
};
inline Backend emulated_backend() { return {DeviceType::CPU, &emulated_launchers(), false}; }
Backend gpu_backend();  // cuda/runtime.cpp, in a build with CUDA

// The caller's current CUDA stream (torch's, looked up in libtorch_cuda at first use: cuda/runtime.cpp).
void* current_stream(int32_t device_index);

// Where one call's launches go, and in which dtype.
class Launcher {
 public:
  Launcher(const Backend& backend, const Tensor& any_operand) : backend_(backend) {
    switch (any_operand.scalar_type()) {
      case ScalarType::Float: dtype_ = CudaDtype::Float; break;
      case ScalarType::Double: dtype_ = CudaDtype::Double; break;
      case ScalarType::Half: dtype_ = CudaDtype::Half; break;
      default: dtype_ = CudaDtype::BFloat16; break;  // check_tensors admits no other
    }
    if (backend.gpu) {
      guard_.emplace(any_operand.get_device_index());
      stream_ = current_stream(any_operand.get_device_index());
    }
  }
  void operator()(CudaKernel k, const CudaParams& p) const {
    const CudaKernel run = k == CudaKernel::ReduceNchwGradWeight && plant_missing_barrier()
                               ? CudaKernel::PlantedMissingBarrier : k;
    const char* error = backend_.table->fn[static_cast<int>(run)][static_cast<int>(dtype_)](p, stream_);
    TC_CHECK(!error, "CUDA kernel ", kCudaKernelNames[static_cast<int>(k)], " failed to launch: ", error);
  }
  size_t acc_size() const { return dtype_ == CudaDtype::Double ? 8 : 4; }

 private:
  const Backend& backend_;
  CudaDtype dtype_;
  void* stream_ = nullptr;
  std::optional<torch::stable::accelerator::DeviceGuard> guard_;
};

// A new tensor on t's device; an allocation that fails names the size.
inline Tensor empty_like_device(const Tensor& t, const std::vector<int64_t>& sizes, MemoryFormat format,
                                const char* what) {
  try {
    return torch::stable::empty(sizes, t.scalar_type(), std::nullopt, t.device(), std::nullopt, format);
  } catch (const std::exception&) {
    double bytes = double(element_size(t.scalar_type()));
    for (int64_t s : sizes) bytes *= double(s);
    detail::fail("out of memory: could not allocate the ", what, " (", bytes / double(int64_t(1) << 30), " GiB of ",
                 dtype_name(t.scalar_type()), ") on ", device_name(t.device().type()));
  }
}

// A (batch, rows, cols) view of t's memory with the given strides: the GEMM's operands.
inline Tensor matrices(const Tensor& t, int64_t b, int64_t r, int64_t c, int64_t sb, int64_t sr, int64_t sc) {
  const int64_t strides[3] = {sb, sr, sc};
  return compat::wrap(const_cast<void*>(t.const_data_ptr()), {b, r, c}, strides, t.scalar_type(), t.device());
}

// f(n0, n) for each chunk [n0, n0 + n) of the batch, in order: n images' columns fit the column budget.
template <typename F>
void for_each_column_chunk(const ConvGeometry& g, const Tensor& t, const F& f) {
  const int64_t images = column_images(g, size_t(element_size(t.scalar_type())));
  for (int64_t n0 = 0; n0 < g.N; n0 += images) f(n0, std::min(images, g.N - n0));
}

inline ConvGeometry chunk(ConvGeometry g, int64_t n) {
  g.N = n;
  return g;
}

inline Operands operands(const Tensor& in, const Tensor& out) {
  return {strides4(in), strides4(out), size_t(element_size(in.scalar_type()))};
}

// The three ops on a backend (the registration and the emulator call these).
Tensor conv2d(const Backend& b, Tensor input, Tensor weight, std::optional<Tensor> bias, std::vector<int64_t> stride,
              std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups,
              const std::string& padding_mode, const std::string& algorithm);
Tensor conv2d_grad_input(const Backend& b, Tensor grad_output, Tensor weight, std::vector<int64_t> input_size,
                         std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                         int64_t groups, const std::string& padding_mode, const std::string& algorithm);
Tensor conv2d_grad_weight(const Backend& b, Tensor input, Tensor grad_output, std::vector<int64_t> weight_size,
                          std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                          int64_t groups, const std::string& padding_mode, const std::string& algorithm);

}  // namespace torchconv::cuda
