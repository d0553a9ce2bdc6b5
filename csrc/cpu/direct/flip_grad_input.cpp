// grad_input at unit stride in zero padding, with the padding within the kernel's extent: the adjoint is then
// itself a grouped convolution, gy correlated with the kernel flipped and transposed within each group, padded by
// (extent - pad). The gather form keeps each gx sum in a register, where the scatter (dense_nchw_grad_input) reads
// and writes gx once per tap. One entry per forward kernel it runs; the plan picks which (cpu/plan.cpp).
#include "common/flipped.h"
#include "cpu/direct/common.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// wt = w flipped and transposed within each group: (C, K / groups, kh, kw). Threaded, in blocks of 16 input
// channels: per k, one read of 16 * taps neighbouring weights, where a plain k, c loop jumps Cg * taps elements per
// read (the 512-channel 3x3 weight is 9.4 MB).
template <typename T>
void flip_weight(const ConvGeometry& g, const T* w, T* wt) {
  const int64_t taps = g.kh * g.kw, Cg = g.Cg(), Kg = g.Kg();
  constexpr int64_t CB = 16;
  const int64_t cblocks = (Cg + CB - 1) / CB;
  parallel_for(0, g.groups * cblocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t grp = item / cblocks, c0 = item % cblocks * CB, c1 = c0 + CB < Cg ? c0 + CB : Cg;
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t c = c0; c < c1; ++c)
          for (int64_t q = 0; q < taps; ++q)
            wt[((grp * Cg + c) * Kg + k) * taps + q] = w[((grp * Kg + k) * Cg + c) * taps + taps - 1 - q];
    }
  });
}

template <typename T>
void as_forward(const KernelFns& forward, const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx,
                Strides4 gxs) {
  Scratch<T> wt(g.K * g.Cg() * g.kh * g.kw);
  flip_weight(g, w, wt.p);
  forward.get<T>().forward(flipped(g), gy, gys, wt.p, nullptr, gx, gxs, nullptr);
}

template <typename T>
void flipdw_nhwc_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs, void*) {
  as_forward(dw_nhwc_forward_fns, g, gy, gys, w, gx, gxs);
}

template <typename T>
void flipdw_nchw_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs, void*) {
  as_forward(dw_nchw_forward_fns, g, gy, gys, w, gx, gxs);
}

template <typename T>
void flipdense_nchw_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs,
                               void*) {
  as_forward(dense_nchw_forward_fns, g, gy, gys, w, gx, gxs);
}

// igemm packs its panels from w itself, reading it flipped: no flipped copy.
template <typename T>
void flipigemm_any_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs,
                              void*) {
  igemm_forward(flipped(g), gy, gys, w, true, static_cast<const T*>(nullptr), gx, gxs);
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(flipdw_nhwc_grad_input, grad_input)
TORCHCONV_DEFINE_KERNEL(flipdw_nchw_grad_input, grad_input)
TORCHCONV_DEFINE_KERNEL(flipdense_nchw_grad_input, grad_input)
TORCHCONV_DEFINE_KERNEL(flipigemm_any_grad_input, grad_input)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
