// The registry of CUDA kernels and the plan, as cpu/plan.h is for the CPU: which kernel runs one pass of one call,
// decided once. The GPU and the emulator (torchconv.testing.cuda_emulation) plan alike. Torch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/geometry.h"
#include "cpu/plan.h"  // Family, Layout, Operands: the same notions on both backends
#include "cuda/kernels.h"

namespace torchconv::cuda {

struct CudaRow {
  const char* name;  // "<family>/<name>", as explain reports it and algorithm= accepts it
  ConvPass pass;
  Family family;
  Layout layout;       // Nhwc: only for channels_last tensors; Any: every layout (the kernels take any strides)
  CudaKernel kernel;   // the direct kernel; the im2col family's row runs its steps around the GEMM
  bool (*applies)(const ConvGeometry& g, size_t acc_size);
  const char* reason;
};

const CudaRow* cuda_rows(int* count);

struct CudaPlan {
  const CudaRow* row;
  std::string why;
};

// requested: auto, im2col, direct, or a CUDA row's name (forced in its pass, its family in the others).
CudaPlan make_cuda_plan(const ConvGeometry& g, ConvPass pass, const std::string& requested, const Operands& ops,
                        size_t acc_size);

// The im2col family's columns take at most this many bytes (one image at least): the batch runs in chunks of
// column_images images. Settable for tests (torchconv.testing.cuda_emulation(column_bytes=...)).
inline constexpr int64_t kColumnBytes = int64_t(256) << 20;
int64_t& column_budget();
int64_t column_images(const ConvGeometry& g, size_t elem_size);

// The emulator's switches (torchconv.testing): whether the CPU ops run the CUDA backend, and the planted bug.
bool& emulation_active();
bool& plant_missing_barrier();

}  // namespace torchconv::cuda
