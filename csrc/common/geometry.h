// Convolution geometry: the one C++ copy of the shape rules, and the index maths shared by every backend.
// Torch-free. The Python twin is python/torchconv/_geometry.py; tests/test_geometry.py pins the two together.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

// always_inline on the host: these helpers are compiled into the per-ISA kernel files too, and an out-of-line copy
// built for AVX-512 must never be the one the linker keeps for the baseline code (one-definition rule).
#if defined(__CUDACC__)
#define TC_HOST_DEVICE __host__ __device__
#else
#define TC_HOST_DEVICE __attribute__((always_inline))
#endif

namespace torchconv {

// The three maps of a convolution: the forward and its adjoints in the input and in the weight.
enum class ConvPass { Forward, GradInput, GradWeight };
inline constexpr const char* kPassNames[] = {"forward", "grad_input", "grad_weight"};

// How an index outside [0, n) is mapped back into the input; the gather applies it, so there is never a padded copy.
enum class PadMode : int { Zeros = 0, Reflect, Replicate, Circular, Symmetric };

inline constexpr const char* kPadModeNames[] = {"zeros", "reflect", "replicate", "circular", "symmetric"};

// Floor modulo (C++ % truncates towards zero).
TC_HOST_DEVICE inline int64_t floor_mod(int64_t i, int64_t n) {
  const int64_t r = i % n;
  return r < 0 ? r + n : r;
}

// Maps a (possibly out-of-range) input index to the index it reads, or -1 for a zero.
// Reflect and symmetric are periodic extensions, so any pad width is defined (as in numpy.pad):
// reflect repeats with period 2(n-1) (edge not repeated), symmetric with period 2n (edge repeated).
TC_HOST_DEVICE inline int64_t map_index(int64_t i, int64_t n, PadMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::Zeros: return -1;
    case PadMode::Replicate: return i < 0 ? 0 : n - 1;
    case PadMode::Circular: return floor_mod(i, n);
    case PadMode::Reflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1), r = floor_mod(i, period);
      return r < n ? r : period - r;
    }
    case PadMode::Symmetric: {
      const int64_t period = 2 * n, r = floor_mod(i, period);
      return r < n ? r : period - 1 - r;
    }
  }
  return -1;
}

struct ConvGeometry {
  int64_t N, C, H, W;         // input
  int64_t K, kh, kw;          // weight is (K, C / groups, kh, kw)
  int64_t OH, OW;             // output
  int64_t sh, sw;             // stride
  int64_t pad_l, pad_r, pad_t, pad_b;
  int64_t dh, dw;             // dilation
  int64_t groups;
  PadMode mode;

  TC_HOST_DEVICE int64_t Cg() const { return C / groups; }
  TC_HOST_DEVICE int64_t Kg() const { return K / groups; }
  TC_HOST_DEVICE int64_t out_pixels() const { return N * OH * OW; }  // columns of the GEMM over the whole batch
  TC_HOST_DEVICE int64_t col_rows() const { return C * kh * kw; }    // rows of the im2col matrix, all groups
  // Input row read by output row oh and kernel row i, after the padding map (-1: a zero).
  TC_HOST_DEVICE int64_t in_row(int64_t oh, int64_t i) const { return map_index(oh * sh - pad_t + i * dh, H, mode); }
  TC_HOST_DEVICE int64_t in_col(int64_t ow, int64_t j) const { return map_index(ow * sw - pad_l + j * dw, W, mode); }
  // Output columns [lo, hi) whose tap j reads input column ow * sw + (j * dw - pad_l) inside [0, W), i.e. with no
  // padding map: the part of a row a kernel can stream through with plain loads.
  TC_HOST_DEVICE void interior_cols(int64_t j, int64_t& lo, int64_t& hi) const {
    interior_range(j * dw - pad_l, sw, W, OW, lo, hi);
  }
  // The same for rows and tap row i.
  TC_HOST_DEVICE void interior_rows(int64_t i, int64_t& lo, int64_t& hi) const {
    interior_range(i * dh - pad_t, sh, H, OH, lo, hi);
  }
  // Output columns where every tap reads inside the input row, so a loop over them needs no padding map.
  TC_HOST_DEVICE void interior_cols_all_taps(int64_t& lo, int64_t& hi) const {
    interior_range_all_taps(-pad_l, sw, kw, dw, W, OW, lo, hi);
  }
  // Whether some output position has a tap outside the input (which zero padding reads as 0).
  TC_HOST_DEVICE bool reads_padding() const {
    return pad_l > 0 || pad_t > 0 || (OW - 1) * sw + (kw - 1) * dw - pad_l > W - 1 ||
           (OH - 1) * sh + (kh - 1) * dh - pad_t > H - 1;
  }

  // Outputs [lo, hi) of n_out, stride s, whose input index o * s + off lies in [0, n_in). make_geometry keeps
  // |off| and s below 2^62, so no step here can overflow.
  TC_HOST_DEVICE static void interior_range(int64_t off, int64_t s, int64_t n_in, int64_t n_out, int64_t& lo,
                                            int64_t& hi) {
    const int64_t last = n_in - 1 - off;
    hi = last < 0 ? 0 : (last / s + 1 < n_out ? last / s + 1 : n_out);
    lo = off >= 0 ? 0 : (-off - 1) / s + 1;
    lo = lo < hi ? lo : hi;
  }
  // Outputs [lo, hi) of n_out whose k taps, d apart from o * s + off, all lie in [0, n_in): the first tap starts
  // last and the last tap ends first.
  TC_HOST_DEVICE static void interior_range_all_taps(int64_t off, int64_t s, int64_t k, int64_t d, int64_t n_in,
                                                     int64_t n_out, int64_t& lo, int64_t& hi) {
    int64_t lo_last = 0, hi_last = 0;
    interior_range(off, s, n_in, n_out, lo, hi);
    interior_range(off + (k - 1) * d, s, n_in, n_out, lo_last, hi_last);
    hi = hi_last > lo ? hi_last : lo;
  }
};

// Strides of a 4-D tensor, in elements (any layout: contiguous, channels_last, sliced).
struct Strides4 {
  int64_t n, c, h, w;
};

namespace detail {
// The message alone (no source path or line, unlike STD_TORCH_CHECK): it is what the user reads.
template <typename... Args>
[[noreturn]] inline void fail(const Args&... args) {
  std::ostringstream os;
  os << "torchconv: ";
  ((os << args), ...);
  throw std::runtime_error(os.str());  // RuntimeError in Python, as F.conv2d raises
}
inline std::string shape_str(const int64_t* s, int n) {
  std::ostringstream os;
  os << "(";
  for (int i = 0; i < n; ++i) os << (i ? ", " : "") << s[i];
  os << ")";
  return os.str();
}
}  // namespace detail

// A failed argument check: RuntimeError("torchconv: " + the message) in Python.
#define TC_CHECK(cond, ...)                                   \
  do {                                                        \
    if (!(cond)) ::torchconv::detail::fail(__VA_ARGS__);      \
  } while (0)

inline PadMode parse_pad_mode(const std::string& s) {
  for (int m = 0; m < 5; ++m)
    if (s == kPadModeNames[m]) return static_cast<PadMode>(m);
  detail::fail("unknown padding_mode '", s, "'; expected one of zeros, reflect, replicate, circular, symmetric");
}

// Validates everything about a convolution that shapes and arguments decide, and computes the output size.
// The messages are matched by the tests, and _geometry.py raises the same ones.
inline ConvGeometry make_geometry(const int64_t* in, const int64_t* wt, const int64_t* stride, const int64_t* padding,
                                  const int64_t* dilation, int64_t groups, const std::string& padding_mode) {
  ConvGeometry g{};
  g.mode = parse_pad_mode(padding_mode);
  if (groups <= 0) detail::fail("groups must be positive, got ", groups);
  if (stride[0] <= 0 || stride[1] <= 0) detail::fail("stride must be positive, got ", detail::shape_str(stride, 2));
  if (dilation[0] <= 0 || dilation[1] <= 0)
    detail::fail("dilation must be positive, got ", detail::shape_str(dilation, 2));
  for (int i = 0; i < 4; ++i)
    if (padding[i] < 0)
      detail::fail("padding must be non-negative, got ", detail::shape_str(padding, 4), " (left, right, top, bottom)");
  for (int i = 0; i < 4; ++i)
    if (in[i] < 0 || wt[i] < 0) detail::fail("sizes must be non-negative");
  if (wt[0] % groups != 0)
    detail::fail("out_channels ", wt[0], " is not divisible by groups ", groups);
  if (in[1] != wt[1] * groups)
    detail::fail("input has ", in[1], " channels, but weight of size ", detail::shape_str(wt, 4), " with groups ",
                 groups, " expects ", wt[1] * groups);
  // Every padding mode but zeros copies input elements into the padding: an empty side has none to copy.
  if (g.mode != PadMode::Zeros &&
      ((in[2] == 0 && padding[2] + padding[3] > 0) || (in[3] == 0 && padding[0] + padding[1] > 0)))
    detail::fail("padding_mode '", padding_mode, "' needs input elements to pad with, got input height and width (",
                 in[2], ", ", in[3], ") with padding ", detail::shape_str(padding, 4), " (left, right, top, bottom)");
  g.N = in[0], g.C = in[1], g.H = in[2], g.W = in[3];
  g.K = wt[0], g.kh = wt[2], g.kw = wt[3];
  g.sh = stride[0], g.sw = stride[1];
  g.dh = dilation[0], g.dw = dilation[1];
  g.pad_l = padding[0], g.pad_r = padding[1], g.pad_t = padding[2], g.pad_b = padding[3];
  g.groups = groups;
  // 128-bit arithmetic: huge paddings or dilations must give an error, not a wrapped size.
  using i128 = __int128;
  const i128 limit = i128(1) << 62;
  const i128 hp = i128(g.H) + g.pad_t + g.pad_b, wp = i128(g.W) + g.pad_l + g.pad_r;
  const i128 ekh = i128(g.dh) * (g.kh - 1) + 1, ekw = i128(g.dw) * (g.kw - 1) + 1;
  if (hp > limit || wp > limit || ekh > limit || ekw > limit)
    detail::fail("padded input or dilated kernel size would overflow");
  if (g.kh == 0 || g.kw == 0 || ekh > hp || ekw > wp)
    detail::fail("kernel size (", g.kh, ", ", g.kw, ") with dilation (", g.dh, ", ", g.dw, ") spans (",
                 int64_t(ekh), ", ", int64_t(ekw), "), larger than the padded input (", int64_t(hp), ", ",
                 int64_t(wp), ")");
  const i128 oh = (hp - ekh) / g.sh + 1, ow = (wp - ekw) / g.sw + 1;
  // Each factor is below 2^63 and the running product is checked before every step, so i128 cannot wrap.
  i128 numel = 1;
  bool overflow = false;
  for (i128 f : {oh, ow, i128(g.K), i128(g.N)}) {
    numel *= f;
    overflow = overflow || numel > limit;
    if (overflow) numel = 1;
  }
  if (overflow)
    detail::fail("output size (", g.N, ", ", g.K, ", ", int64_t(oh), ", ", int64_t(ow), ") would overflow");
  g.OH = static_cast<int64_t>(oh), g.OW = static_cast<int64_t>(ow);
  // A single output row or column never multiplies its stride: every stride above (padded size - extent) gives the
  // same convolution, and the smallest of them keeps every index the kernels compute (o * s + offset) below 2^63.
  if (g.OH == 1 && g.sh > hp - ekh) g.sh = static_cast<int64_t>(hp - ekh + 1);
  if (g.OW == 1 && g.sw > wp - ekw) g.sw = static_cast<int64_t>(wp - ekw + 1);
  return g;
}

}  // namespace torchconv
