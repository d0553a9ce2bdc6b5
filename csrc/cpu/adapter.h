// What the three CPU adapters share. Each reads as one line: checks (ops/checks.h), allocation of the result, the
// plan (cpu/plan.h: one registry row), the operands laid out as that row reads them, dtype dispatch, the kernel,
// then a copy back if the kernel wrote a stand-in.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/nonfinite.h"
#include "cpu/plan.h"
#include "cuda/adapter.h"
#include "ops/checks.h"

namespace torchconv::cpu {

constexpr auto kCpu = torch::headeronly::DeviceType::CPU;

// torch's allocator fails through the stable shim with a message that names neither the size nor the cause.
inline Tensor empty4(const std::array<int64_t, 4>& sizes, ScalarType dtype, MemoryFormat format, const char* what) {
  try {
    return torch::stable::empty({sizes.data(), 4}, dtype, std::nullopt,
                                torch::stable::Device(torch::headeronly::DeviceType::CPU), std::nullopt, format);
  } catch (const std::exception&) {
    const double gib =
        double(sizes[0]) * sizes[1] * sizes[2] * sizes[3] * element_size(dtype) / double(int64_t(1) << 30);
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

// The plan for this call, from its input-shaped tensor (x, or the allocated gx) and output-shaped one (y or gy).
inline Plan plan_call(const ConvGeometry& g, ConvPass pass, const std::string& algorithm, const Tensor& in,
                      const Tensor& out) {
  return make_plan(g, pass, algorithm, Operands{strides4(in), strides4(out), size_t(element_size(in.scalar_type()))});
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

// An empty input plane in zero padding with a non-empty output: every tap of every output reads a padded zero,
// and torch's rule 0 * NaN = 0 * Inf = NaN (cpu/nonfinite.h) makes NaN each output channel k (along result_dim of
// `result`) whose slice k along factor_dim of `factor` (the weight for the forward, grad_output for grad_weight)
// has a non-finite value.
inline void nan_where_padding_meets_nonfinite(const ConvGeometry& g, Tensor& result, int64_t result_dim,
                                              const Tensor& factor, int64_t factor_dim) {
  if (g.N == 0 || g.Cg() == 0 || (g.H > 0 && g.W > 0) || result.numel() == 0 || factor.numel() == 0) return;
  const bool wide = factor.scalar_type() == ScalarType::Double;
  const Tensor f = torch::stable::contiguous(torch::stable::to(factor, wide ? ScalarType::Double : ScalarType::Float));
  // factor is (K, ...) or (N, K, ...): element i is in channel (i / inner) % K
  const int64_t channels = g.K, inner = factor.numel() / factor.size(0) / (factor_dim == 0 ? 1 : channels);
  std::vector<char> nonfinite(channels, 0);
  for (int64_t i = 0, n = f.numel(); i < n; ++i) {
    const double v = wide ? cptr<double>(f)[i] : double(cptr<float>(f)[i]);
    if (!std::isfinite(v)) nonfinite[(i / inner) % channels] = 1;
  }
  for (int64_t k = 0; k < channels; ++k) {
    if (!nonfinite[k]) continue;
    Tensor slice = torch::stable::narrow(result, result_dim, k, 1);
    torch::stable::fill_(slice, std::nan(""));
  }
}

// Calls f(T{}) with T the C++ type of dtype, the compute dtype of a Batch (float32 or float64).
template <typename F>
inline void dispatch_float(ScalarType dtype, const F& f) {
  if (dtype == ScalarType::Float) f(float{});
  else f(double{});
}

// out[n, k, h, w] = bias[k] (contiguous bias): a copy from the bias seen with stride 0 along n, h and w, which
// also converts its dtype.
inline void fill_with_bias(Tensor& out, const Tensor& bias) {
  const int64_t strides[4] = {0, 1, 0, 0};
  const auto s = sizes4(out);
  const Tensor spread = compat::wrap(const_cast<void*>(bias.const_data_ptr()), {s[0], s[1], s[2], s[3]}, strides,
                                     bias.scalar_type(), torch::stable::Device(kCpu));
  torch::stable::copy_(out, spread);
}

// The batch as the kernels see it. float32 and float64 tensors go to the kernels whole, in place. float16 and
// bfloat16 ones are computed in float32: the kernels run on float32 copies of a chunk of images at a time
// (staging_images, cpu/plan.h) and each result is rounded back once. So every kernel serves the half types with
// float32 accumulation, and a large half-precision batch does not take twice its memory in copies.
struct Batch {
  bool staged;
  ScalarType dtype;  // what the kernels compute in
  int64_t N, images;  // the batch, and the images of a chunk

  Batch(const ConvGeometry& g, ScalarType t)
      : staged(is_half(t)), dtype(staged ? ScalarType::Float : t), N(g.N), images(staged ? staging_images(g) : g.N) {}

  // The geometry of a chunk of n images.
  static ConvGeometry chunk(ConvGeometry g, int64_t n) {
    g.N = n;
    return g;
  }
  // A small tensor (the weight, the bias) in the compute dtype.
  Tensor whole(const Tensor& t) const { return staged ? torch::stable::to(t, dtype) : t; }
  // Where the kernels see a chunk of t: t itself, or a float32 buffer of `images` images laid out as t is.
  Tensor buffer(const Tensor& t, const char* what) const {
    if (!staged) return t;
    auto s = sizes4(t);
    s[0] = images;
    return empty4(s, dtype, suggests_channels_last(t) ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous, what);
  }
  // The first n images of a buffer.
  Tensor front(Tensor& buf, int64_t n) const { return n == buf.size(0) ? buf : torch::stable::narrow(buf, 0, 0, n); }
  // Images [n0, n0 + n) of t, as the kernels read them: t itself, or copied into the front of buf.
  Tensor load(Tensor& buf, Tensor& t, int64_t n0, int64_t n) const {
    if (!staged) return t;
    Tensor part = front(buf, n);
    torch::stable::copy_(part, torch::stable::narrow(t, 0, n0, n));
    return part;
  }
  // Writes a chunk's result back into images [n0, n0 + n) of t (rounding it to t's dtype).
  void store(Tensor& t, int64_t n0, const Tensor& part) const {
    if (!staged) return;
    Tensor dst = torch::stable::narrow(t, 0, n0, part.size(0));
    torch::stable::copy_(dst, part);
  }
  // f(n0, n) for each chunk [n0, n0 + n), in order.
  template <typename F>
  void for_each_chunk(const F& f) const {
    for (int64_t n0 = 0; n0 < N; n0 += images) f(n0, std::min(images, N - n0));
  }
  // A pass that maps each image of src to the same image of dst (forward: x to y; grad_input: gy to gx), chunk by
  // chunk: run(chunk geometry, src's chunk, where the row writes dst's chunk), then the copies back.
  template <typename Run>
  void map_images(const ConvGeometry& g, const KernelRow& row, Tensor& src_buf, Tensor& src, Tensor& dst_buf,
                  Tensor& dst, const Run& run) const {
    for_each_chunk([&](int64_t n0, int64_t n) {
      const Tensor in = load(src_buf, src, n0, n);
      Tensor out = front(dst_buf, n);
      Tensor target = output_target(out, row);
      run(chunk(g, n), in, target);
      finish_output(out, target);
      store(dst, n0, out);
    });
  }
};

}  // namespace torchconv::cpu
