// The torchconv op schemas, all in one place. Padding is (left, right, top, bottom); padding_mode is one of
// zeros, reflect, replicate, circular, symmetric; algorithm is auto, im2col, direct or a kernel's name
// (cpu/plan.cpp).
// Autograd and fake kernels are registered in python/torchconv/_ops.py, in terms of these three ops.
#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY(torchconv, m) {
  m.def(
      "conv2d(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation, "
      "int groups, str padding_mode, str algorithm) -> Tensor");
  m.def(
      "conv2d_grad_input(Tensor grad_output, Tensor weight, SymInt[] input_size, int[] stride, int[] padding, "
      "int[] dilation, int groups, str padding_mode, str algorithm) -> Tensor");
  m.def(
      "conv2d_grad_weight(Tensor input, Tensor grad_output, SymInt[] weight_size, int[] stride, int[] padding, "
      "int[] dilation, int groups, str padding_mode, str algorithm) -> Tensor");
}
