// grad_input as a forward: at unit stride in zero padding, with the padding within the kernel's extent, the adjoint
// of conv2d in its input is itself a grouped convolution of gy with the kernel flipped and transposed within each
// group, padded by (extent - pad). Shared by the plan (cpu/plan.cpp) and the kernels (cpu/direct/flip_grad_input.cpp).
#pragma once

#include "common/geometry.h"

namespace torchconv {

// The forward's geometry for the flipped problem: gy is its input, gx its output.
TC_HOST_DEVICE inline ConvGeometry flipped(const ConvGeometry& g) {
  const int64_t ekh = (g.kh - 1) * g.dh, ekw = (g.kw - 1) * g.dw;
  ConvGeometry t = g;
  t.C = g.K, t.K = g.C, t.H = g.OH, t.W = g.OW, t.OH = g.H, t.OW = g.W;
  t.pad_t = ekh - g.pad_t, t.pad_b = ekh - g.pad_b, t.pad_l = ekw - g.pad_l, t.pad_r = ekw - g.pad_r;
  return t;
}

}  // namespace torchconv
