// What every CUDA kernel file includes: the CUDA names under nvcc or the emulator's under g++ (emulation/), the
// element types and their float32 accumulation, and the padding-map inverse the gather kernels share.
// Torch-free: kernels take the plain CudaParams of cuda/kernels.h.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/geometry.h"
#include "cuda/kernels.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define TC_DEVICE __device__ __forceinline__
// The block's dynamic shared memory as bytes; the launch plan sizes it.
#define TC_SHARED_BYTES(name) extern __shared__ __align__(16) unsigned char name[]
#else
#include "cuda/emulation/emulator.h"
// The CUDA names the kernels use, for g++.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define threadIdx (::torchconv::emu::self().thread_idx)
#define blockIdx (::torchconv::emu::self().block_idx)
#define blockDim (::torchconv::emu::self().block_dim)
#define gridDim (::torchconv::emu::self().grid_dim)
#define __syncthreads() ::torchconv::emu::syncthreads()
#define TC_DEVICE inline
#define TC_SHARED_BYTES(name) unsigned char* name = ::torchconv::emu::self().shared
#endif

namespace torchconv::cuda {

#if defined(__CUDACC__)
using Half = __half;
using BFloat16 = __nv_bfloat16;
TC_DEVICE float load(const Half* p) { return __half2float(*p); }
TC_DEVICE float load(const BFloat16* p) { return __bfloat162float(*p); }
TC_DEVICE void store(Half* p, float v) { *p = __float2half_rn(v); }
TC_DEVICE void store(BFloat16* p, float v) { *p = __float2bfloat16_rn(v); }
#else
// IEEE binary16 and bfloat16 bits, converted as the GPU's round-to-nearest-even intrinsics do.
struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};
inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float load(const Half* p) {
  const uint32_t h = p->bits, sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) return bits_float(sign) + (sign ? -1.f : 1.f) * float(man) * 0x1p-24f;  // zero or subnormal
  if (exp == 31) return bits_float(sign | 0x7f800000u | (man << 13));                  // Inf or NaN
  return bits_float(sign | ((exp + 112) << 23) | (man << 13));
}
inline void store(Half* p, float v) {
  const uint32_t x = float_bits(v), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  uint32_t h;
  if (a > 0x7f800000u) h = 0x7e00u;                                      // NaN
  else if (a < 0x38800000u) h = uint32_t(__builtin_nearbyintf(bits_float(a) * 0x1p24f));  // below 2^-14: subnormal
  else h = (a - 0x38000000u + 0xfffu + (((a - 0x38000000u) >> 13) & 1u)) >> 13;  // rebias, round; carries to Inf
  p->bits = uint16_t(sign | (h > 0x7c00u && a <= 0x7f800000u ? 0x7c00u : h));
}
inline float load(const BFloat16* p) { return bits_float(uint32_t(p->bits) << 16); }
inline void store(BFloat16* p, float v) {
  const uint32_t x = float_bits(v);
  const bool nan = (x & 0x7fffffffu) > 0x7f800000u;
  p->bits = nan ? uint16_t((x >> 16) | 0x40u) : uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
#endif

TC_DEVICE float load(const float* p) { return *p; }
TC_DEVICE double load(const double* p) { return *p; }
TC_DEVICE void store(float* p, float v) { *p = v; }
TC_DEVICE void store(double* p, double v) { *p = v; }

// Half types accumulate in float32, as cuDNN and torch's own kernels do.
template <typename T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <typename T>
using acc_t = typename AccOf<T>::type;

// Element offset of [n, c, h, w] in a tensor of strides s (64-bit: a tensor may pass 2^31 elements).
TC_DEVICE int64_t at(const Strides4& s, int64_t n, int64_t c, int64_t h, int64_t w) {
  return n * s.n + c * s.c + h * s.h + w * s.w;
}

// Calls f(i, o) for every output o (of n_out, stride s) whose tap i (of k, dilation d) reads input index `in` of
// n_in after the padding map: the adjoint of map_index, so grad_input is a gather with no atomics. The direct read
// is one division per tap; in a mode other than zeros, the outputs whose tap reads outside [0, n_in) (the range
// interior_range leaves out: at most pad / s + 1 of them a side) are checked for mapping onto `in`.
template <typename F>
TC_DEVICE void for_each_reader(int64_t in, int64_t n_in, int64_t n_out, int64_t s, int64_t pad, int64_t k,
                               int64_t d, PadMode mode, const F& f) {
  for (int64_t i = 0; i < k; ++i) {
    const int64_t t = in + pad - i * d;  // o * s, where output o's tap i reads `in` directly
    if (t >= 0 && t % s == 0 && t / s < n_out) f(i, t / s);
    if (mode == PadMode::Zeros) continue;
    int64_t lo = 0, hi = 0;
    ConvGeometry::interior_range(i * d - pad, s, n_in, n_out, lo, hi);
    for (int64_t o = 0; o < lo; ++o)
      if (map_index(o * s - pad + i * d, n_in, mode) == in) f(i, o);
    for (int64_t o = hi; o < n_out; ++o)
      if (map_index(o * s - pad + i * d, n_in, mode) == in) f(i, o);
  }
}

// f(i, oh, j, ow) for every output (oh, ow) and tap (i, j) that reads input pixel (ih, iw).
template <typename F>
TC_DEVICE void for_each_reader(const ConvGeometry& g, int64_t ih, int64_t iw, const F& f) {
  for_each_reader(ih, g.H, g.OH, g.sh, g.pad_t, g.kh, g.dh, g.mode, [&](int64_t i, int64_t oh) {
    for_each_reader(iw, g.W, g.OW, g.sw, g.pad_l, g.kw, g.dw, g.mode, [&](int64_t j, int64_t ow) { f(i, oh, j, ow); });
  });
}

// The input value a tap reads: the mapped element, or 0 for zero padding (multiplied like any other value, so that
// a NaN or Inf meeting the padding gives NaN, as torch's 0 * Inf does).
template <typename T>
TC_DEVICE acc_t<T> tap(const T* x, const Strides4& xs, int64_t n, int64_t c, int64_t ih, int64_t iw) {
  return ih < 0 || iw < 0 ? acc_t<T>(0) : acc_t<T>(load(x + at(xs, n, c, ih, iw)));
}

// The index of this thread in a 1-D grid, and the grid's thread count: kernels loop over their elements with this
// stride, so any element count runs on a grid capped by the launch plan.
TC_DEVICE int64_t global_thread() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
TC_DEVICE int64_t grid_threads() { return int64_t(gridDim.x) * blockDim.x; }

}  // namespace torchconv::cuda
