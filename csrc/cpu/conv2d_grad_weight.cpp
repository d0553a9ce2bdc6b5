// CPU adapter for torchconv::conv2d_grad_weight (the adjoint of conv2d in its weight).
#include "cpu/adapter.h"

namespace torchconv::cpu {

Tensor conv2d_grad_weight(Tensor input, Tensor grad_output, std::vector<int64_t> weight_size,
                          std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                          int64_t groups, compat::Str padding_mode, compat::Str algorithm) {
  if (cuda::emulation_active())  // torchconv.testing.cuda_emulation(): the CUDA backend, emulated
    return cuda::conv2d_grad_weight(cuda::emulated_backend(), input, grad_output, weight_size, stride, padding,
                                    dilation, groups, padding_mode, algorithm);
  const ConvGeometry g = check_conv2d_grad_weight(kCpu, input, grad_output, weight_size, stride, padding, dilation,
                                                  groups, padding_mode);
  // Always contiguous: every kernel accumulates W_g as (K/groups, C/groups*kh*kw) matrices.
  Tensor grad_weight = empty4({weight_size[0], weight_size[1], weight_size[2], weight_size[3]}, input.scalar_type(),
                              MemoryFormat::Contiguous, "weight gradient");
  const Batch batch(g, input.scalar_type());
  Tensor xbuf = batch.buffer(input, "float32 copy of the input");
  Tensor gybuf = batch.buffer(grad_output, "float32 copy of grad_output");
  const Plan plan = plan_call(Batch::chunk(g, batch.images), ConvPass::GradWeight, algorithm, xbuf, gybuf);
  if (nothing_to_sum(grad_weight, input, grad_output)) {
    nan_where_padding_meets_nonfinite(g, grad_weight, 0, grad_output, 1);
    return grad_weight;
  }
  // The sum over the batch: the first chunk's into `sum`, each later chunk's into `part`, added in chunk order.
  const bool chunked = batch.images < batch.N;
  Tensor sum = batch.staged ? empty4(sizes4(grad_weight), batch.dtype, MemoryFormat::Contiguous, "float32 weight "
                                     "gradient")
                            : grad_weight;
  Tensor part = chunked ? empty4(sizes4(grad_weight), batch.dtype, MemoryFormat::Contiguous, "weight gradient of a "
                                 "chunk")
                        : sum;
  dispatch_float(batch.dtype, [&](auto zero) {
    using T = decltype(zero);
    batch.for_each_chunk([&](int64_t n0, int64_t n) {
      const ConvGeometry gc = Batch::chunk(g, n);
      const Tensor xc = batch.load(xbuf, input, n0, n), gyc = batch.load(gybuf, grad_output, n0, n);
      T* gw = n0 == 0 ? mptr<T>(sum) : mptr<T>(part);
      Tensor gy_used = gyc;  // the operand the last launch read, for the check below
      const auto launch = [&](const KernelRow& row) {
        const Tensor x = operand(xc, row);
        gy_used = operand(gyc, row);
        kernel_fns(row.id).get<T>().grad_weight(gc, cptr<T>(x), strides4(x), cptr<T>(gy_used), strides4(gy_used), gw,
                                                row_workspace(row, gc, sizeof(T)));
      };
      run_planned(plan, gc, ConvPass::GradWeight, launch,
                  [&] { return grad_weight_nonfinite<T>(gc, cptr<T>(gy_used), strides4(gy_used), gw); });
      if (n0 > 0) {
        T* acc = mptr<T>(sum);
        for (int64_t i = 0, e = sum.numel(); i < e; ++i) acc[i] += gw[i];
      }
    });
  });
  if (batch.staged) torch::stable::copy_(grad_weight, sum);
  return grad_weight;
}

STABLE_TORCH_LIBRARY_IMPL(torchconv, CPU, m) { m.impl("conv2d_grad_weight", TORCH_BOX(&conv2d_grad_weight)); }

}  // namespace torchconv::cpu
