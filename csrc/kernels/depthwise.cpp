// Compiled once per ISA: TC_CPU_CAPABILITY names the inline namespace (cpu_default, cpu_avx2, cpu_avx512).
// Everything but the exported table has internal linkage, and no std:: container or algorithm is used, so no
// template instance built for a wider ISA can be shared with (and picked by the linker for) the baseline code.
#include "kernels/depthwise.h"

#include <cstdlib>
#include <new>

#include "kernels/runtime.h"

#ifndef TC_CPU_CAPABILITY
#error "compile depthwise.cpp with -DTC_CPU_CAPABILITY=cpu_<isa>"
#endif

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// A heap array with internal linkage (see the top of the file for why not std::vector).
template <typename T>
struct Scratch {
  T* p;
  explicit Scratch(int64_t n) : p(static_cast<T*>(std::malloc(sizeof(T) * (n > 0 ? n : 1)))) {
    if (!p) throw std::bad_alloc();
  }
  ~Scratch() { std::free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T& operator[](int64_t i) const { return p[i]; }
};

template <typename T>
inline void fill(T* p, int64_t n, T v) {
  for (int64_t i = 0; i < n; ++i) p[i] = v;
}

// Per call: each tap's interior range of output columns (see ConvGeometry::interior_cols), and the padding map of
// rows and columns as tables (kh*OH + kw*OW indices, a few KB at most), so edges cost a load, not a switch.
struct Interior {
  Scratch<int64_t> lo, hi, rows, cols;
  const ConvGeometry& g;
  explicit Interior(const ConvGeometry& geom)
      : lo(geom.kw), hi(geom.kw), rows(geom.kh * geom.OH), cols(geom.kw * geom.OW), g(geom) {
    for (int64_t j = 0; j < g.kw; ++j) g.interior_cols(j, lo[j], hi[j]);
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t oh = 0; oh < g.OH; ++oh) rows[i * g.OH + oh] = g.in_row(oh, i);
    for (int64_t j = 0; j < g.kw; ++j)
      for (int64_t ow = 0; ow < g.OW; ++ow) cols[j * g.OW + ow] = g.in_col(ow, j);
  }
  int64_t row(int64_t i, int64_t oh) const { return rows[i * g.OH + oh]; }  // g.in_row(oh, i)
  int64_t col(int64_t j, int64_t ow) const { return cols[j * g.OW + ow]; }  // g.in_col(ow, j)
};

// Calls f(ow) for the output columns outside the interior [lo, hi): the few that need the padding map.
template <typename F>
inline void for_each_edge(int64_t lo, int64_t hi, int64_t OW, const F& f) {
  for (int64_t ow = 0; ow < lo; ++ow) f(ow);
  for (int64_t ow = hi; ow < OW; ++ow) f(ow);
}

// The row kernels are templated on unit column strides (Contig) and the column stride of the convolution
// (SW = 1 or 2, or 0 for any), so the interior loops compile to plain vector loads for the common cases.

// acc[ow] += sum over taps of w[i, j] * x[ih(oh, i), iw(ow, j)], for one output row.
template <typename T, bool Contig, int SW>
void forward_row(const ConvGeometry& g, const Interior& in, const T* xp, Strides4 xs, const T* wk, int64_t oh,
                 T* acc) {
  const int64_t sw = SW ? SW : g.sw, xw = Contig ? 1 : xs.w;
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t ih = in.row(i, oh);
    if (ih < 0) continue;
    const T* xr = xp + ih * xs.h;
    for (int64_t j = 0; j < g.kw; ++j) {
      const T wv = wk[i * g.kw + j];
      const int64_t lo = in.lo[j], hi = in.hi[j];
      const T* s = xr + (j * g.dw - g.pad_l) * xw;  // s[ow * sw * xw] is the tap's input for interior ow
      for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += wv * s[ow * sw * xw];
      for_each_edge(lo, hi, g.OW, [&](int64_t ow) {
        const int64_t iw = in.col(j, ow);
        if (iw >= 0) acc[ow] += wv * xr[iw * xw];
      });
    }
  }
}

// gx[ih(oh, i), iw(ow, j)] += w[i, j] * gy[oh, ow] for one output row: the exact adjoint of forward_row.
template <typename T, bool Contig, int SW>
void grad_input_row(const ConvGeometry& g, const Interior& in, const T* gyr, int64_t gyw, const T* wk, int64_t oh,
                    T* gxp, Strides4 gxs) {
  const int64_t sw = SW ? SW : g.sw, xw = Contig ? 1 : gxs.w, yw = Contig ? 1 : gyw;
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t ih = in.row(i, oh);
    if (ih < 0) continue;
    T* xr = gxp + ih * gxs.h;
    for (int64_t j = 0; j < g.kw; ++j) {
      const T wv = wk[i * g.kw + j];
      const int64_t lo = in.lo[j], hi = in.hi[j];
      T* d = xr + (j * g.dw - g.pad_l) * xw;
      for (int64_t ow = lo; ow < hi; ++ow) d[ow * sw * xw] += wv * gyr[ow * yw];
      for_each_edge(lo, hi, g.OW, [&](int64_t ow) {
        const int64_t iw = in.col(j, ow);
        if (iw >= 0) xr[iw * xw] += wv * gyr[ow * yw];
      });
    }
  }
}

// Lanes of independent partial sums: the reduction vectorizes without reassociating anything, so the result is
// the same bits on every run and for any thread count (ISAs differ: only AVX2 and AVX-512 contract to FMA).
constexpr int kLanes = 16;

// gw[k, i, j] = sum over n, oh, ow of gy[n, k, oh, ow] * x[n, c, ih(oh, i), iw(ow, j)], one tap at a time so the
// kLanes partial sums stay in registers across all rows and images.
template <typename T, bool Contig, int SW>
T grad_weight_tap(const ConvGeometry& g, const Interior& in, const T* x, Strides4 xs, const T* gy, Strides4 gys,
                  int64_t c, int64_t k, int64_t i, int64_t j) {
  const int64_t sw = SW ? SW : g.sw, xw = Contig ? 1 : xs.w, yw = Contig ? 1 : gys.w;
  const int64_t lo = in.lo[j], hi = in.hi[j], off = j * g.dw - g.pad_l;
  T lanes[kLanes] = {};
  T edge = 0;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const int64_t ih = in.row(i, oh);
      if (ih < 0) continue;
      const T* xr = x + n * xs.n + c * xs.c + ih * xs.h;
      const T* s = xr + off * xw;  // s[ow * sw * xw] is the tap's input for interior ow
      const T* gr = gy + n * gys.n + k * gys.c + oh * gys.h;
      int64_t ow = lo;
      for (; ow + kLanes <= hi; ow += kLanes)
        for (int l = 0; l < kLanes; ++l) lanes[l] += gr[(ow + l) * yw] * s[(ow + l) * sw * xw];
      for (int l = 0; ow < hi; ++ow, ++l) lanes[l] += gr[ow * yw] * s[ow * sw * xw];
      for_each_edge(lo, hi, g.OW, [&](int64_t o) {
        const int64_t iw = in.col(j, o);
        if (iw >= 0) edge += gr[o * yw] * xr[iw * xw];
      });
    }
  for (int l = 0; l < kLanes; ++l) edge += lanes[l];
  return edge;
}

// y[ow] = bias + sum over taps, for the output columns [lo, hi) of a row whose taps all lie inside the input.
// KH x KW is unrolled, so the sum stays in a vector register across the taps (KH*KW loads and FMAs per output
// vector, one store) instead of a load and a store of an accumulator row per tap.
template <typename T, int SW, int KH, int KW>
void forward_row_unrolled(const ConvGeometry& g, const T* const* xr, const T* wk, T b, int64_t lo, int64_t hi,
                          T* __restrict yr) {
  T wv[KH * KW];
  for (int t = 0; t < KH * KW; ++t) wv[t] = wk[t];
  const int64_t dw = g.dw, off = -g.pad_l;
  for (int64_t ow = lo; ow < hi; ++ow) {
    T a = b;
#pragma GCC unroll 8
    for (int i = 0; i < KH; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < KW; ++j) a += wv[i * KW + j] * xr[i][ow * SW + j * dw + off];
    yr[ow] = a;
  }
}

// The same sum over a flat run [p0, p1) of a plane, for stride 1 with OW == W: then output p reads input
// p + off[t] for tap t, across row ends too, so one vector loop covers all the interior rows at once (on 7x7 and
// 14x14 planes a row alone is shorter than an AVX-512 vector). Outputs whose taps wrap across a row end are wrong
// here and are recomputed by the caller through the padding map.
template <typename T, int KH, int KW>
void forward_flat(const T* xp, const int64_t* off, const T* wk, T b, int64_t p0, int64_t p1, T* __restrict yp) {
  T wv[KH * KW];
  int64_t o[KH * KW];
  for (int t = 0; t < KH * KW; ++t) wv[t] = wk[t], o[t] = off[t];
  for (int64_t p = p0; p < p1; ++p) {
    T a = b;
#pragma GCC unroll 32  // fully: GCC stops at 16 on its own, and a loop left inside blocks vectorizing over p
    for (int t = 0; t < KH * KW; ++t) a += wv[t] * xp[p + o[t]];
    yp[p] = a;
  }
}

// Picks the row kernel instantiation for this call's strides.
template <template <typename, bool, int> class K, typename T, typename... A>
void with_row_kernel(const ConvGeometry& g, bool contig, A&&... a) {
  if (contig && g.sw == 1) K<T, true, 1>::run(g, a...);
  else if (contig && g.sw == 2) K<T, true, 2>::run(g, a...);
  else if (contig) K<T, true, 0>::run(g, a...);
  else K<T, false, 0>::run(g, a...);
}

// Forward over whole output planes. With KH, KW > 0 (3x3 and 5x5, unit column strides), rows whose taps all lie
// inside the input take the unrolled kernel on their interior columns; every other output goes through the
// general per-tap row accumulation, which handles any size, stride and padding mode.
template <typename T, bool Contig, int SW, int KH, int KW>
struct ForwardPlanes {
  static void run(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys) {
    const Interior in(g);
    const int64_t mult = g.K / g.C, taps = g.kh * g.kw;
    // Interior columns for every tap at once: tap 0 starts last and tap kw-1 ends first.
    const int64_t lo_all = in.lo[0], hi_all = in.hi[g.kw - 1] > lo_all ? in.hi[g.kw - 1] : lo_all;
    // Rows [r0, r1) have every row tap inside the input; with stride 1, OW == W and dense planes they are done flat.
    int64_t r0 = 0, r1 = 0;
    while (r0 < g.OH && r0 * g.sh - g.pad_t < 0) ++r0;
    for (r1 = r0; r1 < g.OH && r1 * g.sh - g.pad_t + (g.kh - 1) * g.dh < g.H;) ++r1;
    const bool flat = KH > 0 && SW == 1 && g.sh == 1 && g.OW == g.W && xs.h == g.W && ys.h == g.OW && r1 > r0 &&
                      hi_all > lo_all;
    int64_t off[KH > 0 ? KH * KW : 1];
    for (int i = 0; i < KH; ++i)
      for (int j = 0; j < KW; ++j) off[i * KW + j] = (i * g.dh - g.pad_t) * g.W + j * g.dw - g.pad_l;
    parallel_for(0, g.N * g.K, 1, [&](int64_t begin, int64_t end) {
      Scratch<T> acc(g.OW);
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t n = plane / g.K, k = plane % g.K;
        const T* xp = x + n * xs.n + (k / mult) * xs.c;
        const T* wk = w + k * taps;
        const T b = bias ? bias[k] : T(0);
        if constexpr (KH > 0)
          if (flat) forward_flat<T, KH, KW>(xp, off, wk, b, r0 * g.OW + lo_all, (r1 - 1) * g.OW + hi_all,
                                            y + n * ys.n + k * ys.c);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          T* yr = y + n * ys.n + k * ys.c + oh * ys.h;
          const int64_t ih0 = oh * g.sh - g.pad_t;
          if constexpr (KH > 0) {
            if (oh >= r0 && oh < r1 && hi_all > lo_all) {
              const T* xr[KH];
              for (int i = 0; i < KH; ++i) xr[i] = xp + (ih0 + i * g.dh) * xs.h;
              if (!flat) forward_row_unrolled<T, SW, KH, KW>(g, xr, wk, b, lo_all, hi_all, yr);
              for_each_edge(lo_all, hi_all, g.OW, [&](int64_t ow) {  // the few columns that need the padding map
                T a = b;
                for (int i = 0; i < KH; ++i)
                  for (int64_t j = 0; j < KW; ++j) {
                    const int64_t iw = in.col(j, ow);
                    if (iw >= 0) a += wk[i * KW + j] * xr[i][iw];
                  }
                yr[ow] = a;
              });
              continue;
            }
          }
          fill(acc.p, g.OW, b);
          forward_row<T, Contig, SW>(g, in, xp, xs, wk, oh, acc.p);
          for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow * (Contig ? 1 : ys.w)] = acc[ow];
        }
      }
    });
  }
};

template <typename T, bool Contig, int SW>
struct Forward : ForwardPlanes<T, Contig, SW, 0, 0> {};

template <typename T, bool Contig, int SW>
struct GradInput {
  static void run(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs) {
    const Interior in(g);
    const int64_t mult = g.K / g.C;
    parallel_for(0, g.N * g.C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t n = plane / g.C, c = plane % g.C;
        T* gxp = gx + n * gxs.n + c * gxs.c;
        for (int64_t h = 0; h < g.H; ++h)
          for (int64_t wi = 0; wi < g.W; ++wi) gxp[h * gxs.h + wi * gxs.w] = T(0);
        for (int64_t k = c * mult; k < (c + 1) * mult; ++k)
          for (int64_t oh = 0; oh < g.OH; ++oh)
            grad_input_row<T, Contig, SW>(g, in, gy + n * gys.n + k * gys.c + oh * gys.h, gys.w,
                                          w + k * g.kh * g.kw, oh, gxp, gxs);
      }
    });
  }
};

template <typename T, bool Contig, int SW>
struct GradWeight {
  static void run(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
    const Interior in(g);
    const int64_t mult = g.K / g.C;
    // A thread owns whole output channels: each weight is summed by one thread in one order.
    parallel_for(0, g.K, 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k)
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j)
            gw[(k * g.kh + i) * g.kw + j] = grad_weight_tap<T, Contig, SW>(g, in, x, xs, gy, gys, k / mult, k, i, j);
    });
  }
};

template <typename T>
void forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys) {
  const bool contig = xs.w == 1 && ys.w == 1;
  // The fast paths the MobileNet/EfficientNet layers need: 3x3 and 5x5 at column stride 1 and 2.
  const int64_t ksq = contig && g.kh == g.kw && (g.kh == 3 || g.kh == 5) ? g.kh : 0;
  if (ksq == 3 && g.sw == 1) ForwardPlanes<T, true, 1, 3, 3>::run(g, x, xs, w, bias, y, ys);
  else if (ksq == 3 && g.sw == 2) ForwardPlanes<T, true, 2, 3, 3>::run(g, x, xs, w, bias, y, ys);
  else if (ksq == 5 && g.sw == 1) ForwardPlanes<T, true, 1, 5, 5>::run(g, x, xs, w, bias, y, ys);
  else if (ksq == 5 && g.sw == 2) ForwardPlanes<T, true, 2, 5, 5>::run(g, x, xs, w, bias, y, ys);
  else with_row_kernel<Forward, T>(g, contig, x, xs, w, bias, y, ys);
}

template <typename T>
void grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs) {
  const int64_t ekh = (g.kh - 1) * g.dh, ekw = (g.kw - 1) * g.dw;
  if (g.mode == PadMode::Zeros && g.sh == 1 && g.sw == 1 && g.K == g.C && g.pad_t <= ekh && g.pad_b <= ekh &&
      g.pad_l <= ekw && g.pad_r <= ekw) {
    // With zero padding, unit stride and one output per channel, the adjoint is itself a depthwise convolution:
    // gy correlated with the flipped kernel, padded by (extent - 1 - pad). The gather form keeps each sum in a
    // register, where the scatter below reads and writes gx once per tap.
    ConvGeometry t = g;
    t.H = g.OH, t.W = g.OW, t.OH = g.H, t.OW = g.W;
    t.pad_t = ekh - g.pad_t, t.pad_b = ekh - g.pad_b, t.pad_l = ekw - g.pad_l, t.pad_r = ekw - g.pad_r;
    const int64_t taps = g.kh * g.kw;
    Scratch<T> flipped(g.K * taps);
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t q = 0; q < taps; ++q) flipped[k * taps + q] = w[k * taps + taps - 1 - q];
    forward<T>(t, gy, gys, flipped.p, nullptr, gx, gxs);
    return;
  }
  with_row_kernel<GradInput, T>(g, gys.w == 1 && gxs.w == 1, gy, gys, w, gx, gxs);
}

template <typename T>
void grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
  with_row_kernel<GradWeight, T>(g, xs.w == 1 && gys.w == 1, x, xs, gy, gys, gw);
}

}  // namespace

extern const DepthwiseTable depthwise_table;
const DepthwiseTable depthwise_table = {
    {&forward<float>, &grad_input<float>, &grad_weight<float>},
    {&forward<double>, &grad_input<double>, &grad_weight<double>},
};

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
