// CPU adapter for torchconv::conv2d_grad_input (the adjoint of conv2d in its input; also conv_transpose2d).
#include "cpu/adapter.h"

namespace torchconv::cpu {

Tensor conv2d_grad_input(Tensor grad_output, Tensor weight, std::vector<int64_t> input_size,
                         std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                         int64_t groups, std::string padding_mode, std::string algorithm) {
  check_4d(grad_output, "grad_output");
  check_4d(weight, "weight");
  check_len(input_size, 4, "input_size");
  check_tensors({{&grad_output, "grad_output"}, {&weight, "weight"}});
  const auto w_size = sizes4(weight);
  const ConvGeometry g = geometry(input_size.data(), w_size.data(), stride, padding, dilation, groups, padding_mode);
  check_output_size(grad_output, g);
  const Algorithm algo = choose_algorithm(g, ConvPass::GradInput, algorithm).algorithm;
  weight = as_contiguous(weight);
  Tensor grad_input = empty4({g.N, g.C, g.H, g.W}, grad_output.scalar_type(), output_format(grad_output, weight));
  auto ws = workspace(im2col_workspace_bytes(g, algo, ConvPass::GradInput, weight.element_size()));
  const bool along_c = direct_along_c(algo, g, {&grad_output, &grad_input});
  grad_output = kernel_operand(grad_output, algo, along_c, g);
  Tensor target = output_target(grad_input, algo, along_c, g);
  dispatch_float(weight.scalar_type(), [&](auto zero) {
    using T = decltype(zero);
    const T* gy = static_cast<const T*>(grad_output.const_data_ptr());
    const T* w = static_cast<const T*>(weight.const_data_ptr());
    T* gx = static_cast<T*>(target.mutable_data_ptr());
    if (algo == Algorithm::Direct) direct<T>().grad_input(g, gy, strides4(grad_output), w, gx, strides4(target));
    else conv2d_im2col_grad_input<T>(g, gy, strides4(grad_output), w, gx, strides4(target), workspace_ptr(ws));
  });
  finish_output(grad_input, target);
  return grad_input;
}

STABLE_TORCH_LIBRARY_IMPL(torchconv, CPU, m) { m.impl("conv2d_grad_input", TORCH_BOX(&conv2d_grad_input)); }

}  // namespace torchconv::cpu
