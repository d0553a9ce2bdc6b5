// What the three CPU adapters share. Each reads as one line: checks (ops/checks.h), allocation of the result, the
// plan (cpu/plan.h: one registry row), the operands laid out as that row reads them, dtype dispatch, the kernel,
// then a copy back if the kernel wrote a stand-in.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

#include "cpu/kernels.h"
#include "cpu/nonfinite.h"
#include "cpu/plan.h"
#include "ops/checks.h"

namespace torchconv::cpu {

constexpr auto kCpu = torch::headeronly::DeviceType::CPU;

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

inline size_t elem_size(const Tensor& t) { return t.scalar_type() == ScalarType::Double ? 8 : 4; }

// The plan for this call, from its input-shaped tensor (x, or the allocated gx) and output-shaped one (y or gy).
inline Plan plan_call(const ConvGeometry& g, ConvPass pass, const std::string& algorithm, const Tensor& in,
                      const Tensor& out) {
  return make_plan(g, pass, algorithm, Operands{strides4(in), strides4(out), elem_size(in)});
}

// A tensor as the row reads it: itself, or a contiguous copy (a pass over memory instead of a gather per lane).
inline Tensor operand(const Tensor& t, const KernelRow& row) {
  return reads_in_place(row.layout, strides4(t), t.size(3)) ? t : torch::stable::contiguous(t);
}

// Where the row writes `out`: `out` itself, or a contiguous stand-in to copy back with finish_output.
inline Tensor output_target(const Tensor& out, const KernelRow& row) {
  if (reads_in_place(row.layout, strides4(out), out.size(3))) return out;
  return empty4(sizes4(out), out.scalar_type(), MemoryFormat::Contiguous, "contiguous copy of the result");
}
inline void finish_output(Tensor& out, const Tensor& target) {
  if (target.data_ptr() != out.data_ptr()) torch::stable::copy_(out, target);
}

// The im2col kernels take their workspace from the adapter; the direct ones from their own per-thread arena.
inline void* row_workspace(const KernelRow& row, const ConvGeometry& g, size_t elem) {
  return row.family == Family::Im2col ? workspace(row.workspace(g, elem)) : nullptr;
}

// Runs the planned row through launch(row); if the row may differ from torch on NaN or Inf and nonfinite() says
// it did, runs the pass again with the im2col row, which multiplies every tap as torch does (cpu/nonfinite.h).
template <typename Launch, typename Nonfinite>
void run_planned(const Plan& plan, const ConvGeometry& g, ConvPass pass, const Launch& launch,
                 const Nonfinite& nonfinite) {
  launch(*plan.row);
  if (!plan.row->nonfinite_exact && nonfinite()) launch(im2col_row(g, pass));
}

template <typename T>
const T* cptr(const Tensor& t) { return static_cast<const T*>(t.const_data_ptr()); }
template <typename T>
T* mptr(Tensor& t) { return static_cast<T*>(t.mutable_data_ptr()); }

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
