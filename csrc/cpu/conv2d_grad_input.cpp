// CPU adapter for torchconv::conv2d_grad_input (the adjoint of conv2d in its input; also conv_transpose2d).
#include "cpu/adapter.h"
#include "kernels/nonfinite.h"

namespace torchconv::cpu {

Tensor conv2d_grad_input(Tensor grad_output, Tensor weight, std::vector<int64_t> input_size,
                         std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                         int64_t groups, compat::Str padding_mode, compat::Str algorithm) {
  check_4d(grad_output, "grad_output");
  check_4d(weight, "weight");
  check_len(input_size, 4, "input_size");
  check_tensors({{&grad_output, "grad_output"}, {&weight, "weight"}});
  const auto w_size = sizes4(weight);
  const ConvGeometry g = geometry(input_size.data(), w_size.data(), stride, padding, dilation, groups, padding_mode);
  check_output_size(grad_output, g);
  const Algorithm algo = choose_algorithm(g, ConvPass::GradInput, algorithm).algorithm;
  Tensor grad_input =
      empty4({g.N, g.C, g.H, g.W}, grad_output.scalar_type(), output_format(grad_output, weight), "input gradient");
  weight = as_contiguous(weight);
  if (nothing_to_sum(grad_input, grad_output, weight)) return grad_input;
  const bool along_c = direct_along_c(algo, g, {&grad_output, &grad_input});
  grad_output = kernel_operand(grad_output, algo, along_c, g);
  Tensor target = output_target(grad_input, algo, along_c, g);
  dispatch_float(weight.scalar_type(), [&](auto zero) {
    using T = decltype(zero);
    const T* gy = static_cast<const T*>(grad_output.const_data_ptr());
    const T* w = static_cast<const T*>(weight.const_data_ptr());
    T* gx = static_cast<T*>(target.mutable_data_ptr());
    auto im2col = [&] {  // also after a direct pass, whose operand may not suit im2col's 1x1 GEMM in place
      const Tensor gyi = kernel_operand(grad_output, Algorithm::Im2col, false, g);
      void* ws = workspace(im2col_workspace_bytes(g, Algorithm::Im2col, ConvPass::GradInput, sizeof(T)));
      conv2d_im2col_grad_input<T>(g, static_cast<const T*>(gyi.const_data_ptr()), strides4(gyi), w, gx,
                                  strides4(target), ws);
    };
    if (algo == Algorithm::Im2col) return im2col();
    direct<T>().grad_input(g, gy, strides4(grad_output), w, gx, strides4(target));
    if (grad_input_weight_nonfinite<T>(g, w, gx, strides4(target))) im2col();  // torch's NaN and Inf (nonfinite.h)
  });
  finish_output(grad_input, target);
  return grad_input;
}

STABLE_TORCH_LIBRARY_IMPL(torchconv, CPU, m) { m.impl("conv2d_grad_input", TORCH_BOX(&conv2d_grad_input)); }

}  // namespace torchconv::cpu
