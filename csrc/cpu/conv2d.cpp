// CPU adapter for torchconv::conv2d.
#include "cpu/adapter.h"

namespace torchconv::cpu {

Tensor conv2d(Tensor input, Tensor weight, std::optional<Tensor> bias, std::vector<int64_t> stride,
              std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups, compat::Str padding_mode,
              compat::Str algorithm) {
  if (cuda::emulation_active())  // torchconv.testing.cuda_emulation(): the CUDA backend, emulated
    return cuda::conv2d(cuda::emulated_backend(), input, weight, bias, stride, padding, dilation, groups,
                        padding_mode, algorithm);
  const ConvGeometry g = check_conv2d(kCpu, input, weight, bias, stride, padding, dilation, groups, padding_mode);
  if (bias.has_value()) bias = as_contiguous(*bias);
  Tensor out = empty4({g.N, g.K, g.OH, g.OW}, input.scalar_type(), output_format(input, weight), "output");
  weight = as_contiguous(weight);  // every kernel reads W as (K, C/groups*kh*kw)
  const Batch batch(g, input.scalar_type());
  Tensor xbuf = batch.buffer(input, "float32 copy of the input"), ybuf = batch.buffer(out, "float32 output");
  const Plan plan = plan_call(Batch::chunk(g, batch.images), ConvPass::Forward, algorithm, xbuf, ybuf);
  if (nothing_to_sum(out, input, weight)) {
    if (bias && out.numel() > 0) fill_with_bias(out, *bias);  // every output is its channel's bias
    nan_where_padding_meets_nonfinite(g, out, 1, weight, 0);
    return out;
  }
  const Tensor weight_c = batch.whole(weight);
  const std::optional<Tensor> bias_c = bias ? std::optional<Tensor>(batch.whole(*bias)) : std::nullopt;
  dispatch_float(batch.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* w = cptr<T>(weight_c);
    batch.map_images(g, *plan.row, xbuf, input, ybuf, out, [&](const ConvGeometry& gc, const Tensor& xc, Tensor& y) {
      const auto launch = [&](const KernelRow& row) {
        const Tensor x = operand(xc, row);
        kernel_fns(row.id).get<T>().forward(gc, cptr<T>(x), strides4(x), w, bias_c ? cptr<T>(*bias_c) : nullptr,
                                            mptr<T>(y), strides4(y), row_workspace(row, gc, sizeof(T)));
      };
      run_planned(plan, gc, ConvPass::Forward, launch,
                  [&] { return forward_weight_nonfinite<T>(gc, w, cptr<T>(y), strides4(y)); });
    });
  });
  return out;
}

STABLE_TORCH_LIBRARY_IMPL(torchconv, CPU, m) { m.impl("conv2d", TORCH_BOX(&conv2d)); }

}  // namespace torchconv::cpu
