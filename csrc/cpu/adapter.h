// Shared by the three CPU adapters: argument checks, geometry, allocation, dtype dispatch.
// The shape rules themselves live in kernels/geometry.h.
#pragma once

#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "kernels/algorithm.h"
#include "kernels/geometry.h"
#include "stable_compat.h"

namespace torchconv::cpu {

using torch::headeronly::MemoryFormat;
using torch::headeronly::ScalarType;
using torch::stable::Tensor;

inline const char* dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Float: return "float32";
    case ScalarType::Double: return "float64";
    case ScalarType::Half: return "float16";
    case ScalarType::BFloat16: return "bfloat16";
    case ScalarType::Int: return "int32";
    case ScalarType::Long: return "int64";
    default: return torch::headeronly::toString(t);
  }
}

inline const char* device_name(torch::headeronly::DeviceType t) {
  switch (t) {
    case torch::headeronly::DeviceType::CPU: return "cpu";
    case torch::headeronly::DeviceType::CUDA: return "cuda";
    case torch::headeronly::DeviceType::Meta: return "meta";
    default: return "another device";
  }
}

inline void check_4d(const Tensor& t, const char* name) {
  TC_CHECK(t.dim() == 4, "expected ", name, " to be 4-D, got ", t.dim(), "-D");
}

// Every tensor argument: on the CPU, float32/float64, and of the first one's dtype.
inline void check_tensors(std::initializer_list<std::pair<const Tensor*, const char*>> ts) {
  const Tensor& first = *ts.begin()->first;
  const ScalarType dtype = first.scalar_type();
  TC_CHECK(dtype == ScalarType::Float || dtype == ScalarType::Double, "unsupported dtype ", dtype_name(dtype), " of ",
           ts.begin()->second, "; supported: float32, float64");
  for (const auto& [t, name] : ts) {
    TC_CHECK(t->is_cpu(), "expected ", name, " on the cpu, like ", ts.begin()->second, ", got ",
             device_name(t->device().type()));
    TC_CHECK(t->scalar_type() == dtype, name, " has dtype ", dtype_name(t->scalar_type()), " but ",
             ts.begin()->second, " has dtype ", dtype_name(dtype));
  }
}

inline void check_len(const std::vector<int64_t>& v, size_t n, const char* name) {
  TC_CHECK(v.size() == n, name, " must have ", n, " values, got ", v.size());
}

// kernels/geometry.h throws std::invalid_argument; torch turns it into a RuntimeError with the same message.
inline ConvGeometry geometry(const int64_t* input_size, const int64_t* weight_size, const std::vector<int64_t>& stride,
                             const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation,
                             int64_t groups, const std::string& padding_mode) {
  check_len(stride, 2, "stride");
  check_len(padding, 4, "padding");
  check_len(dilation, 2, "dilation");
  return make_geometry(input_size, weight_size, stride.data(), padding.data(), dilation.data(), groups, padding_mode);
}

inline std::array<int64_t, 4> sizes4(const Tensor& t) {
  return {t.size(0), t.size(1), t.size(2), t.size(3)};
}

inline Strides4 strides4(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }

// torch's rule for "does this 4-D tensor look channels_last" (c10 is_channels_last_strides_2d_s4): walk C, W, H, N
// and require non-decreasing strides; ambiguous layouts (size-1 dims, zero C stride) fall back to NCHW.
inline bool suggests_channels_last(const Tensor& t) {
  if (t.stride(1) == 0) return false;
  int64_t min = 0;
  for (int d : {1, 3, 2, 0}) {
    if (t.size(d) == 0 || t.stride(d) < min) return false;
    if (d == 0 && min == t.stride(1)) return false;
    min = t.stride(d) * (t.size(d) > 1 ? t.size(d) : 1);
  }
  return true;
}

// torch's conv2d output layout: channels_last when either operand suggests it (thnn/mkldnn_conv_use_channels_last).
inline MemoryFormat output_format(const Tensor& a, const Tensor& b) {
  return suggests_channels_last(a) || suggests_channels_last(b) ? MemoryFormat::ChannelsLast
                                                                 : MemoryFormat::Contiguous;
}

// grad_output must have the shape the geometry gives the forward output.
inline void check_output_size(const Tensor& grad_output, const ConvGeometry& g) {
  const auto s = sizes4(grad_output);
  TC_CHECK(s[0] == g.N && s[1] == g.K && s[2] == g.OH && s[3] == g.OW, "grad_output has size (", s[0], ", ", s[1],
           ", ", s[2], ", ", s[3], "), expected (", g.N, ", ", g.K, ", ", g.OH, ", ", g.OW, ")");
}

// torch's allocator fails through the stable shim with a message that names neither the size nor the cause.
inline Tensor empty4(const std::array<int64_t, 4>& sizes, ScalarType dtype, MemoryFormat format, const char* what) {
  try {
    return torch::stable::empty({sizes.data(), 4}, dtype, std::nullopt,
                                torch::stable::Device(torch::headeronly::DeviceType::CPU), std::nullopt, format);
  } catch (const std::exception&) {
    const double gib = double(sizes[0]) * sizes[1] * sizes[2] * sizes[3] * (dtype == ScalarType::Double ? 8 : 4) /
                       double(int64_t(1) << 30);
    detail::fail("out of memory: could not allocate the ", what, " of size (", sizes[0], ", ", sizes[1], ", ",
                 sizes[2], ", ", sizes[3], "), ", gib, " GiB of ", dtype_name(dtype));
  }
}

// Scratch for the im2col kernels, from a buffer each calling thread keeps and grows to the most it was asked for,
// instead of a multi-MiB malloc and free per call. Ops never nest on one thread, so one buffer a thread suffices.
inline void* workspace(int64_t bytes) {
  struct Buffer {
    void* p = nullptr;
    int64_t bytes = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buffer;
  if (bytes == 0) return nullptr;
  if (bytes > buffer.bytes) {
    std::free(buffer.p);
    buffer.p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    buffer.bytes = buffer.p ? bytes : 0;
    TC_CHECK(buffer.p, "out of memory: could not allocate ", bytes, " bytes of workspace");
  }
  return buffer.p;
}

// Every call into torch goes through the boxed dispatcher (about a microsecond); skip it when there is nothing to do.
inline Tensor as_contiguous(const Tensor& t) { return t.is_contiguous() ? t : torch::stable::contiguous(t); }

// The direct kernels vectorize along W, and along C for a depthwise layer (one channel per group) whose tensors
// all have channel stride 1 (channels_last). Whether this call's tensors are read in place along C:
inline bool direct_along_c(Algorithm algo, const ConvGeometry& g, std::initializer_list<const Tensor*> tensors) {
  if (algo != Algorithm::Direct || g.Cg() != 1 || g.Kg() != 1) return false;
  for (const Tensor* t : tensors)
    if (t->stride(1) != 1) return false;
  return true;
}

// Otherwise a tensor whose W stride is not 1 (channels_last) is read through a contiguous copy, and written through
// one: a pass over memory instead of a gather per lane. The im2col kernels take any strides, except that a 1x1 GEMM
// run in place needs planes that are matrices (contiguous and channels_last tensors are). Whether the kernel takes
// a tensor, read or written, as it is:
inline bool kernel_takes_as_is(const Tensor& t, Algorithm algo, bool along_c, const ConvGeometry& g) {
  if (algo == Algorithm::Direct) return along_c || t.stride(3) == 1;
  return !im2col_in_place(g) || plane_is_matrix(strides4(t), t.size(3));
}
inline Tensor kernel_operand(const Tensor& t, Algorithm algo, bool along_c, const ConvGeometry& g) {
  return kernel_takes_as_is(t, algo, along_c, g) ? t : torch::stable::contiguous(t);
}

// Where a kernel writes `out`: `out` itself, or a contiguous stand-in to copy back with finish_output.
inline Tensor output_target(const Tensor& out, Algorithm algo, bool along_c, const ConvGeometry& g) {
  if (kernel_takes_as_is(out, algo, along_c, g)) return out;
  return empty4(sizes4(out), out.scalar_type(), MemoryFormat::Contiguous, "contiguous copy of the result");
}
inline void finish_output(Tensor& out, const Tensor& target) {
  if (target.data_ptr() != out.data_ptr()) torch::stable::copy_(out, target);
}

// The calls with nothing to compute, answered before any kernel runs, so that no kernel meets an empty extent (a
// division by zero channels, a loop over the rows of a huge padding with no image to write): an empty result, or
// one that sums over nothing (no input channels, no output channels, an empty batch or an empty input plane).
inline bool nothing_to_sum(Tensor& result, const Tensor& a, const Tensor& b) {
  if (result.numel() > 0 && (a.numel() == 0 || b.numel() == 0)) torch::stable::zero_(result);
  return result.numel() == 0 || a.numel() == 0 || b.numel() == 0;
}

// Calls f(T{}) with T the C++ type of dtype (already checked to be float32 or float64).
template <typename F>
inline void dispatch_float(ScalarType dtype, const F& f) {
  if (dtype == ScalarType::Float) f(float{});
  else f(double{});
}

// out[n, k, h, w] = bias[k] (contiguous bias), in out's own layout.
inline void fill_with_bias(Tensor& out, const Tensor& bias) {
  const auto s = sizes4(out);
  const Strides4 st = strides4(out);
  dispatch_float(out.scalar_type(), [&](auto zero) {
    using T = decltype(zero);
    T* y = static_cast<T*>(out.mutable_data_ptr());
    const T* b = static_cast<const T*>(bias.const_data_ptr());
    for (int64_t n = 0; n < s[0]; ++n)
      for (int64_t k = 0; k < s[1]; ++k)
        for (int64_t h = 0; h < s[2]; ++h)
          for (int64_t w = 0; w < s[3]; ++w) y[n * st.n + k * st.c + h * st.h + w * st.w] = b[k];
  });
}

}  // namespace torchconv::cpu
