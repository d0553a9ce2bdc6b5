// CUDA adapter for torchconv::conv2d_grad_input (the GPU registration, and the emulator's entry).
#include "cuda/adapter.h"

namespace torchconv::cuda {

Tensor conv2d_grad_input(const Backend& b, Tensor grad_output, Tensor weight, std::vector<int64_t> input_size,
                         std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                         int64_t groups, const std::string& padding_mode, const std::string& algorithm) {
  const ConvGeometry g = check_conv2d_grad_input(b.device, grad_output, weight, input_size, stride, padding,
                                                 dilation, groups, padding_mode);
  Tensor grad_input =
      empty_like_device(grad_output, {g.N, g.C, g.H, g.W}, output_format(grad_output, weight), "input gradient");
  if (!weight.is_contiguous()) weight = torch::stable::contiguous(weight);
  const Launcher launch(b, grad_output);
  const CudaPlan plan =
      make_cuda_plan(g, ConvPass::GradInput, algorithm, operands(grad_input, grad_output), launch.acc_size());
  if (grad_input.numel() == 0) return grad_input;
  if (plan.row->family == Family::Direct) {
    launch(plan.row->kernel, {g, nullptr, {}, weight.const_data_ptr(), nullptr, grad_output.const_data_ptr(),
                              strides4(grad_output), grad_input.mutable_data_ptr(), strides4(grad_input), nullptr});
    return grad_input;
  }
  // im2col: per chunk, grad_output as the GEMM's rows, one bmm over the groups (W_g^T rows_g), then col2im.
  const int64_t G = g.groups, rows_per_group = g.Cg() * g.kh * g.kw;
  const Tensor wt = matrices(weight, G, rows_per_group, g.Kg(), g.Kg() * rows_per_group, 1, rows_per_group);
  for_each_column_chunk(g, grad_output, [&](int64_t n0, int64_t n) {
    const ConvGeometry gc = chunk(g, n);
    const Tensor gy = torch::stable::narrow(grad_output, 0, n0, n);
    Tensor gx = torch::stable::narrow(grad_input, 0, n0, n);
    Tensor rows = empty_like_device(gy, {G, g.Kg(), gc.out_pixels()}, MemoryFormat::Contiguous, "GEMM operand");
    Tensor cols = empty_like_device(gy, {G, rows_per_group, gc.out_pixels()}, MemoryFormat::Contiguous, "columns");
    launch(CudaKernel::OutputToRows, {gc, nullptr, {}, nullptr, nullptr, gy.const_data_ptr(), strides4(gy), nullptr,
                                      {}, rows.mutable_data_ptr()});
    compat::bmm_out(cols, wt, rows);
    launch(CudaKernel::Col2im, {gc, nullptr, {}, nullptr, nullptr, nullptr, {}, gx.mutable_data_ptr(), strides4(gx),
                                cols.mutable_data_ptr()});
  });
  return grad_input;
}

#ifdef TORCHCONV_WITH_CUDA
Tensor conv2d_grad_input_gpu(Tensor grad_output, Tensor weight, std::vector<int64_t> input_size,
                             std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                             int64_t groups, compat::Str padding_mode, compat::Str algorithm) {
  return conv2d_grad_input(gpu_backend(), grad_output, weight, input_size, stride, padding, dilation, groups,
                           padding_mode, algorithm);
}
STABLE_TORCH_LIBRARY_IMPL(torchconv, CUDA, m) { m.impl("conv2d_grad_input", TORCH_BOX(&conv2d_grad_input_gpu)); }
#endif

}  // namespace torchconv::cuda
