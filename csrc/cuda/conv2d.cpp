// CUDA adapter for torchconv::conv2d (the GPU registration, and the emulator's entry).
#include "cuda/adapter.h"

namespace torchconv::cuda {

Tensor conv2d(const Backend& b, Tensor input, Tensor weight, std::optional<Tensor> bias, std::vector<int64_t> stride,
              std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups,
              const std::string& padding_mode, const std::string& algorithm) {
  const ConvGeometry g =
      check_conv2d(b.device, input, weight, bias, stride, padding, dilation, groups, padding_mode);
  if (bias.has_value() && !bias->is_contiguous()) bias = torch::stable::contiguous(*bias);
  Tensor out = empty_like_device(input, {g.N, g.K, g.OH, g.OW}, output_format(input, weight), "output");
  if (!weight.is_contiguous()) weight = torch::stable::contiguous(weight);  // kernels read it as (K, C/groups*kh*kw)
  const Launcher launch(b, input);
  const CudaPlan plan = make_cuda_plan(g, ConvPass::Forward, algorithm, operands(input, out), launch.acc_size());
  if (out.numel() == 0) return out;
  const void* bias_ptr = bias ? bias->const_data_ptr() : nullptr;
  if (plan.row->family == Family::Direct) {
    launch(plan.row->kernel, {g, input.const_data_ptr(), strides4(input), weight.const_data_ptr(), bias_ptr, nullptr,
                              {}, out.mutable_data_ptr(), strides4(out), nullptr});
    return out;
  }
  // im2col: per chunk, the columns, one bmm over the groups (W_g cols_g), then the rows into the output + bias.
  const int64_t G = g.groups, rows_per_group = g.Cg() * g.kh * g.kw;
  const Tensor w3 = matrices(weight, G, g.Kg(), rows_per_group, g.Kg() * rows_per_group, rows_per_group, 1);
  for_each_column_chunk(g, input, [&](int64_t n0, int64_t n) {
    const ConvGeometry gc = chunk(g, n);
    const Tensor x = torch::stable::narrow(input, 0, n0, n);
    Tensor y = torch::stable::narrow(out, 0, n0, n);
    Tensor cols = empty_like_device(input, {G, rows_per_group, gc.out_pixels()}, MemoryFormat::Contiguous, "columns");
    Tensor rows = empty_like_device(input, {G, g.Kg(), gc.out_pixels()}, MemoryFormat::Contiguous, "GEMM product");
    launch(CudaKernel::Im2col, {gc, x.const_data_ptr(), strides4(x), nullptr, nullptr, nullptr, {}, nullptr, {},
                                cols.mutable_data_ptr()});
    compat::bmm_out(rows, w3, cols);
    launch(CudaKernel::RowsToOutput, {gc, nullptr, {}, nullptr, bias_ptr, nullptr, {}, y.mutable_data_ptr(),
                                      strides4(y), rows.mutable_data_ptr()});
  });
  return out;
}

#ifdef TORCHCONV_WITH_CUDA
Tensor conv2d_gpu(Tensor input, Tensor weight, std::optional<Tensor> bias, std::vector<int64_t> stride,
                  std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups, compat::Str padding_mode,
                  compat::Str algorithm) {
  return conv2d(gpu_backend(), input, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm);
}
STABLE_TORCH_LIBRARY_IMPL(torchconv, CUDA, m) { m.impl("conv2d", TORCH_BOX(&conv2d_gpu)); }
#endif

}  // namespace torchconv::cuda
