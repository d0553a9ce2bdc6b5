// CPU adapter for torchconv::conv2d: checks, allocation, dtype dispatch, then the torch-free kernel.
#include "cpu/adapter.h"
#include "kernels/nonfinite.h"

namespace torchconv::cpu {

Tensor conv2d(Tensor input, Tensor weight, std::optional<Tensor> bias, std::vector<int64_t> stride,
              std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups, compat::Str padding_mode,
              compat::Str algorithm) {
  check_4d(input, "input");
  check_4d(weight, "weight");
  check_tensors({{&input, "input"}, {&weight, "weight"}});
  const auto in_size = sizes4(input), w_size = sizes4(weight);
  const ConvGeometry g = geometry(in_size.data(), w_size.data(), stride, padding, dilation, groups, padding_mode);
  const Algorithm algo = choose_algorithm(g, ConvPass::Forward, algorithm).algorithm;
  if (bias.has_value()) {
    check_tensors({{&input, "input"}, {&*bias, "bias"}});
    TC_CHECK(bias->dim() == 1 && bias->size(0) == g.K, "expected bias of size (", g.K,
             "), one per output channel, got a ", bias->dim(), "-D bias with ", bias->numel(), " elements");
    bias = as_contiguous(*bias);
  }
  Tensor out = empty4({g.N, g.K, g.OH, g.OW}, input.scalar_type(), output_format(input, weight), "output");
  weight = as_contiguous(weight);  // the GEMM reads W as a (K, C/groups*kh*kw) matrix
  if (nothing_to_sum(out, input, weight)) {
    if (bias && out.numel() > 0) fill_with_bias(out, *bias);  // every output is its channel's bias
    return out;
  }
  const bool along_c = direct_along_c(algo, g, {&input, &out});
  input = kernel_operand(input, algo, along_c, g);
  Tensor target = output_target(out, algo, along_c, g);
  dispatch_float(input.scalar_type(), [&](auto zero) {
    using T = decltype(zero);
    const T* x = static_cast<const T*>(input.const_data_ptr());
    const T* w = static_cast<const T*>(weight.const_data_ptr());
    const T* b = bias ? static_cast<const T*>(bias->const_data_ptr()) : nullptr;
    T* y = static_cast<T*>(target.mutable_data_ptr());
    auto im2col = [&] {  // also after a direct pass, whose operand may not suit im2col's 1x1 GEMM in place
      const Tensor xi = kernel_operand(input, Algorithm::Im2col, false, g);
      void* ws = workspace(im2col_workspace_bytes(g, Algorithm::Im2col, ConvPass::Forward, sizeof(T)));
      conv2d_im2col_forward<T>(g, static_cast<const T*>(xi.const_data_ptr()), strides4(xi), w, b, y,
                               strides4(target), ws);
    };
    if (algo == Algorithm::Im2col) return im2col();
    direct<T>().forward(g, x, strides4(input), w, b, y, strides4(target));
    if (forward_weight_nonfinite<T>(g, w, y, strides4(target))) im2col();  // torch's NaN and Inf (nonfinite.h)
  });
  finish_output(out, target);
  return out;
}

STABLE_TORCH_LIBRARY_IMPL(torchconv, CPU, m) { m.impl("conv2d", TORCH_BOX(&conv2d)); }

}  // namespace torchconv::cpu
