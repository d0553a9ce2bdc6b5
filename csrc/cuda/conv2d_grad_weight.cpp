// CUDA adapter for torchconv::conv2d_grad_weight (the GPU registration, and the emulator's entry).
#include "cuda/adapter.h"

namespace torchconv::cuda {

Tensor conv2d_grad_weight(const Backend& b, Tensor input, Tensor grad_output, std::vector<int64_t> weight_size,
                          std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                          int64_t groups, const std::string& padding_mode, const std::string& algorithm) {
  const ConvGeometry g = check_conv2d_grad_weight(b.device, input, grad_output, weight_size, stride, padding,
                                                  dilation, groups, padding_mode);
  Tensor grad_weight = empty_like_device(input, weight_size, MemoryFormat::Contiguous, "weight gradient");
  const Launcher launch(b, input);
  const CudaPlan plan =
      make_cuda_plan(g, ConvPass::GradWeight, algorithm, operands(input, grad_output), launch.acc_size());
  if (grad_weight.numel() == 0) return grad_weight;
  if (g.N == 0) return torch::stable::zero_(grad_weight);  // a sum over no images
  if (plan.row->family == Family::Direct) {
    launch(plan.row->kernel, {g, input.const_data_ptr(), strides4(input), nullptr, nullptr,
                              grad_output.const_data_ptr(), strides4(grad_output), grad_weight.mutable_data_ptr(),
                              {}, nullptr});
    return grad_weight;
  }
  // im2col: per chunk, the columns and grad_output's rows, one bmm over the groups (rows_g cols_g^T); the first
  // chunk's product is the gradient, each later one is added to it in order (deterministic).
  const int64_t G = g.groups, rows_per_group = g.Cg() * g.kh * g.kw;
  Tensor gw3 = matrices(grad_weight, G, g.Kg(), rows_per_group, g.Kg() * rows_per_group, rows_per_group, 1);
  std::optional<Tensor> part;
  for_each_column_chunk(g, input, [&](int64_t n0, int64_t n) {
    const ConvGeometry gc = chunk(g, n);
    const int64_t columns = gc.out_pixels();
    const Tensor x = torch::stable::narrow(input, 0, n0, n), gy = torch::stable::narrow(grad_output, 0, n0, n);
    Tensor cols = empty_like_device(input, {G, rows_per_group, columns}, MemoryFormat::Contiguous, "columns");
    Tensor rows = empty_like_device(input, {G, g.Kg(), columns}, MemoryFormat::Contiguous, "GEMM operand");
    launch(CudaKernel::Im2col, {gc, x.const_data_ptr(), strides4(x), nullptr, nullptr, nullptr, {}, nullptr, {},
                                cols.mutable_data_ptr()});
    launch(CudaKernel::OutputToRows, {gc, nullptr, {}, nullptr, nullptr, gy.const_data_ptr(), strides4(gy), nullptr,
                                      {}, rows.mutable_data_ptr()});
    const Tensor cols_t = matrices(cols, G, columns, rows_per_group, rows_per_group * columns, 1, columns);
    if (n0 == 0) return compat::bmm_out(gw3, rows, cols_t);
    if (!part) part = empty_like_device(input, {G, g.Kg(), rows_per_group}, MemoryFormat::Contiguous, "chunk's sum");
    compat::bmm_out(*part, rows, cols_t);
    launch(CudaKernel::Accumulate, {g, nullptr, {}, nullptr, nullptr, nullptr, {}, grad_weight.mutable_data_ptr(), {},
                                    part->mutable_data_ptr()});
  });
  return grad_weight;
}

#ifdef TORCHCONV_WITH_CUDA
Tensor conv2d_grad_weight_gpu(Tensor input, Tensor grad_output, std::vector<int64_t> weight_size,
                              std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                              int64_t groups, compat::Str padding_mode, compat::Str algorithm) {
  return conv2d_grad_weight(gpu_backend(), input, grad_output, weight_size, stride, padding, dilation, groups,
                            padding_mode, algorithm);
}
STABLE_TORCH_LIBRARY_IMPL(torchconv, CUDA, m) { m.impl("conv2d_grad_weight", TORCH_BOX(&conv2d_grad_weight_gpu)); }
#endif

}  // namespace torchconv::cuda
