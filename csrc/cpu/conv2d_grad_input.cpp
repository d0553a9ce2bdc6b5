// CPU adapter for torchconv::conv2d_grad_input (the adjoint of conv2d in its input; also conv_transpose2d).
#include "cpu/adapter.h"

namespace torchconv::cpu {

Tensor conv2d_grad_input(Tensor grad_output, Tensor weight, std::vector<int64_t> input_size,
                         std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                         int64_t groups, compat::Str padding_mode, compat::Str algorithm) {
  if (cuda::emulation_active())  // torchconv.testing.cuda_emulation(): the CUDA backend, emulated
    return cuda::conv2d_grad_input(cuda::emulated_backend(), grad_output, weight, input_size, stride, padding,
                                   dilation, groups, padding_mode, algorithm);
  const ConvGeometry g = check_conv2d_grad_input(kCpu, grad_output, weight, input_size, stride, padding, dilation,
                                                 groups, padding_mode);
  Tensor grad_input =
      empty4({g.N, g.C, g.H, g.W}, grad_output.scalar_type(), output_format(grad_output, weight), "input gradient");
  weight = as_contiguous(weight);
  const Batch batch(g, weight.scalar_type());
  Tensor gybuf = batch.buffer(grad_output, "float32 copy of grad_output");
  Tensor gxbuf = batch.buffer(grad_input, "float32 input gradient");
  const Plan plan = plan_call(Batch::chunk(g, batch.images), ConvPass::GradInput, algorithm, gxbuf, gybuf);
  if (nothing_to_sum(grad_input, grad_output, weight)) return grad_input;
  const Tensor weight_c = batch.whole(weight);
  dispatch_float(batch.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* w = cptr<T>(weight_c);
    batch.map_images(g, *plan.row, gybuf, grad_output, gxbuf, grad_input,
                     [&](const ConvGeometry& gc, const Tensor& gyc, Tensor& gx) {
      const auto launch = [&](const KernelRow& row) {
        const Tensor gy = operand(gyc, row);
        kernel_fns(row.id).get<T>().grad_input(gc, cptr<T>(gy), strides4(gy), w, mptr<T>(gx), strides4(gx),
                                               row_workspace(row, gc, sizeof(T)));
      };
      run_planned(plan, gc, ConvPass::GradInput, launch,
                  [&] { return grad_input_weight_nonfinite<T>(gc, w, cptr<T>(gx), strides4(gx)); });
    });
  });
  return grad_input;
}

STABLE_TORCH_LIBRARY_IMPL(torchconv, CPU, m) { m.impl("conv2d_grad_input", TORCH_BOX(&conv2d_grad_input)); }

}  // namespace torchconv::cpu
