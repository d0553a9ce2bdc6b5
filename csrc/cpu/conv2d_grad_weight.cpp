// CPU adapter for torchconv::conv2d_grad_weight (the adjoint of conv2d in its weight).
#include "cpu/adapter.h"
#include "kernels/nonfinite.h"

namespace torchconv::cpu {

Tensor conv2d_grad_weight(Tensor input, Tensor grad_output, std::vector<int64_t> weight_size,
                          std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                          int64_t groups, compat::Str padding_mode, compat::Str algorithm) {
  check_4d(input, "input");
  check_4d(grad_output, "grad_output");
  check_len(weight_size, 4, "weight_size");
  check_tensors({{&input, "input"}, {&grad_output, "grad_output"}});
  const auto in_size = sizes4(input);
  const ConvGeometry g = geometry(in_size.data(), weight_size.data(), stride, padding, dilation, groups, padding_mode);
  check_output_size(grad_output, g);
  const Algorithm algo = choose_algorithm(g, ConvPass::GradWeight, algorithm).algorithm;
  // Always contiguous: the kernel accumulates W_g as (K/groups, C/groups*kh*kw) matrices.
  Tensor grad_weight = empty4({weight_size[0], weight_size[1], weight_size[2], weight_size[3]}, input.scalar_type(),
                              MemoryFormat::Contiguous, "weight gradient");
  if (nothing_to_sum(grad_weight, input, grad_output)) return grad_weight;
  const bool along_c = direct_along_c(algo, g, {&input, &grad_output});
  input = kernel_operand(input, algo, along_c, g), grad_output = kernel_operand(grad_output, algo, along_c, g);
  dispatch_float(input.scalar_type(), [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(input.const_data_ptr());
    const T* gy = static_cast<const T*>(grad_output.const_data_ptr());
    T* gw = static_cast<T*>(grad_weight.mutable_data_ptr());
    auto im2col = [&] {  // also after a direct pass, whose operands may not suit im2col's 1x1 GEMM in place
      const Tensor xi = kernel_operand(input, Algorithm::Im2col, false, g);
      const Tensor gyi = kernel_operand(grad_output, Algorithm::Im2col, false, g);
      void* ws = workspace(im2col_workspace_bytes(g, Algorithm::Im2col, ConvPass::GradWeight, sizeof(T)));
      conv2d_im2col_grad_weight<T>(g, static_cast<const T*>(xi.const_data_ptr()), strides4(xi),
                                   static_cast<const T*>(gyi.const_data_ptr()), strides4(gyi), gw, ws);
    };
    if (algo == Algorithm::Im2col) return im2col();
    direct<T>().grad_weight(g, x, strides4(input), gy, strides4(grad_output), gw);
    // torch's NaN and Inf (nonfinite.h); the by-channel kernel already multiplies a padded copy, as im2col does.
    if (!grad_weight_by_channel_applies(g, sizeof(T)) && grad_weight_nonfinite<T>(g, gy, strides4(grad_output), gw))
      im2col();
  });
  return grad_weight;
}

STABLE_TORCH_LIBRARY_IMPL(torchconv, CPU, m) { m.impl("conv2d_grad_weight", TORCH_BOX(&conv2d_grad_weight)); }

}  // namespace torchconv::cpu
