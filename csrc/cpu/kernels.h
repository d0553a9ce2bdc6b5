// The CPU kernels, one entry per row of the registry (cpu/plan.h), and the plain signature each pass's kernels
// share. Torch-free: raw pointers, element strides and the geometry. Names follow <family>_<layout>_<pass>:
//   family  dense (any groups, a block of output channels per tile), igemm (implicit GEMM: packed weights, the
//           input gathered a tile of pixels at a time), dw (one channel per group), cvec (input channels along
//           the vector), flipdense / flipdw / flipigemm (grad_input as the forward over the flipped kernel),
//           cols (im2col: gathered columns + GEMM), gemm1x1 (a 1x1 GEMM on the tensors in place);
//   layout  what the kernel reads in place: nchw (rows with unit stride), nhwc (channels with unit stride), any
//           (any strides), matrix (each image a channels x pixels matrix).
#pragma once

#include "common/geometry.h"

namespace torchconv {

// Every kernel, once: (enum value, function name). The order is the table's, not the plan's (cpu/plan.cpp).
// The direct kernels are compiled once per ISA (cpu/direct/), the im2col ones once (cpu/im2col/).
#define TORCHCONV_DIRECT_KERNELS(X)                    \
  X(DwNhwcForward, dw_nhwc_forward)                    \
  X(DwNchwForward, dw_nchw_forward)                    \
  X(DenseNchwForward, dense_nchw_forward)              \
  X(IgemmAnyForward, igemm_any_forward)                \
  X(DwNchwGradInput, dw_nchw_grad_input)               \
  X(DwNhwcGradInput, dw_nhwc_grad_input)               \
  X(FlipdwNhwcGradInput, flipdw_nhwc_grad_input)       \
  X(FlipdwNchwGradInput, flipdw_nchw_grad_input)       \
  X(FlipdenseNchwGradInput, flipdense_nchw_grad_input) \
  X(FlipigemmAnyGradInput, flipigemm_any_grad_input)   \
  X(DenseNchwGradInput, dense_nchw_grad_input)         \
  X(DwNhwcGradWeight, dw_nhwc_grad_weight)             \
  X(DwNchwGradWeight, dw_nchw_grad_weight)             \
  X(CvecNchwGradWeight, cvec_nchw_grad_weight)         \
  X(DenseNchwGradWeight, dense_nchw_grad_weight)
#define TORCHCONV_IM2COL_KERNELS(X)                        \
  X(Gemm1x1MatrixForward, gemm1x1_matrix_forward)          \
  X(ColsAnyForward, cols_any_forward)                      \
  X(Gemm1x1MatrixGradInput, gemm1x1_matrix_grad_input)     \
  X(ColsAnyGradInput, cols_any_grad_input)                 \
  X(Gemm1x1MatrixGradWeight, gemm1x1_matrix_grad_weight)   \
  X(ColsAnyGradWeight, cols_any_grad_weight)
#define TORCHCONV_KERNELS(X) TORCHCONV_DIRECT_KERNELS(X) TORCHCONV_IM2COL_KERNELS(X)

#define TORCHCONV_KERNEL_ID(id, fn) id,
enum class KernelId : int { TORCHCONV_KERNELS(TORCHCONV_KERNEL_ID) Count };
#undef TORCHCONV_KERNEL_ID
inline constexpr int kNumKernels = static_cast<int>(KernelId::Count);

// y = conv2d(x, w) + bias; w contiguous (K, C / groups, kh, kw); bias may be null.
template <typename T>
using ForwardFn = void (*)(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y,
                           Strides4 ys, void* workspace);
// gx = the adjoint of conv2d in x, applied to gy; gx is overwritten.
template <typename T>
using GradInputFn = void (*)(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs,
                             void* workspace);
// gw = the adjoint of conv2d in w, applied to gy; gw contiguous (K, C / groups, kh, kw), overwritten.
template <typename T>
using GradWeightFn = void (*)(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw,
                              void* workspace);

// One kernel for both dtypes; only the entries of its own pass are set. workspace: the bytes its registry row asks
// for (im2col's columns and tiles); the direct kernels take their scratch from a per-thread arena instead.
template <typename T>
struct PassFns {
  ForwardFn<T> forward = nullptr;
  GradInputFn<T> grad_input = nullptr;
  GradWeightFn<T> grad_weight = nullptr;
};
struct KernelFns {
  PassFns<float> f32;
  PassFns<double> f64;
  template <typename T>
  const PassFns<T>& get() const {
    if constexpr (sizeof(T) == 4) return f32;
    else return f64;
  }
};

// Defines `<name>_fns`, the entry of a kernel template `name<T>` of the given pass, for both dtypes.
#define TORCHCONV_DEFINE_KERNEL(name, pass)                                 \
  extern const KernelFns name##_fns;                                        \
  const KernelFns name##_fns = [] {                                         \
    KernelFns k;                                                            \
    k.f32.pass = &name<float>;                                              \
    k.f64.pass = &name<double>;                                             \
    return k;                                                               \
  }();

struct KernelFns;
#define TORCHCONV_DECLARE_KERNEL(id, fn) extern const KernelFns fn##_fns;
TORCHCONV_IM2COL_KERNELS(TORCHCONV_DECLARE_KERNEL)

// The kernels of the ISA in use (cpu/isa/cpu_capability.cpp picks the table), indexed by KernelId.
const KernelFns& kernel_fns(KernelId id);

}  // namespace torchconv
