// CPU adapter for torchconv::conv2d_grad_weight (the adjoint of conv2d in its weight).
#include "cpu/adapter.h"

namespace torchconv::cpu {

Tensor conv2d_grad_weight(Tensor input, Tensor grad_output, std::vector<int64_t> weight_size,
                          std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                          int64_t groups, compat::Str padding_mode, compat::Str algorithm) {
  check_4d(input, "input");
  check_4d(grad_output, "grad_output");
  check_len(weight_size, 4, "weight_size");
  check_tensors(kCpu, {{&input, "input"}, {&grad_output, "grad_output"}});
  const auto in_size = sizes4(input);
  const ConvGeometry g = geometry(in_size.data(), weight_size.data(), stride, padding, dilation, groups, padding_mode);
  check_output_size(grad_output, g);
  // Always contiguous: every kernel accumulates W_g as (K/groups, C/groups*kh*kw) matrices.
  Tensor grad_weight = empty4({weight_size[0], weight_size[1], weight_size[2], weight_size[3]}, input.scalar_type(),
                              MemoryFormat::Contiguous, "weight gradient");
  const Plan plan = plan_call(g, ConvPass::GradWeight, algorithm, input, grad_output);
  if (nothing_to_sum(grad_weight, input, grad_output)) return grad_weight;
  dispatch_float(input.scalar_type(), [&](auto zero) {
    using T = decltype(zero);
    T* gw = mptr<T>(grad_weight);
    Tensor gy_used = grad_output;  // the operand the last launch read, for the check below
    const auto launch = [&](const KernelRow& row) {
      const Tensor x = operand(input, row);
      gy_used = operand(grad_output, row);
      kernel_fns(row.id).get<T>().grad_weight(g, cptr<T>(x), strides4(x), cptr<T>(gy_used), strides4(gy_used), gw,
                                              row_workspace(row, g, sizeof(T)));
    };
    run_planned(plan, g, ConvPass::GradWeight, launch,
                [&] { return grad_weight_nonfinite<T>(g, cptr<T>(gy_used), strides4(gy_used), gw); });
  });
  return grad_weight;
}

STABLE_TORCH_LIBRARY_IMPL(torchconv, CPU, m) { m.impl("conv2d_grad_weight", TORCH_BOX(&conv2d_grad_weight)); }

}  // namespace torchconv::cpu
