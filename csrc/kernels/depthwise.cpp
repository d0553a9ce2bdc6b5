#include "kernels/depthwise.h"

#include <vector>

#include "kernels/runtime.h"

namespace torchconv {
namespace {

// Per-tap interior ranges of the output columns (see ConvGeometry::interior_cols), computed once per call.
struct Interior {
  std::vector<int64_t> lo, hi;
  explicit Interior(const ConvGeometry& g) : lo(g.kw), hi(g.kw) {
    for (int64_t j = 0; j < g.kw; ++j) g.interior_cols(j, lo[j], hi[j]);
  }
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
    const int64_t ih = g.in_row(oh, i);
    if (ih < 0) continue;
    const T* xr = xp + ih * xs.h;
    for (int64_t j = 0; j < g.kw; ++j) {
      const T wv = wk[i * g.kw + j];
      const int64_t lo = in.lo[j], hi = in.hi[j];
      const T* s = xr + (j * g.dw - g.pad_l) * xw;  // s[ow * sw * xw] is the tap's input for interior ow
      for (int64_t ow = lo; ow < hi; ++ow) acc[ow] += wv * s[ow * sw * xw];
      for_each_edge(lo, hi, g.OW, [&](int64_t ow) {
        const int64_t iw = g.in_col(ow, j);
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
    const int64_t ih = g.in_row(oh, i);
    if (ih < 0) continue;
    T* xr = gxp + ih * gxs.h;
    for (int64_t j = 0; j < g.kw; ++j) {
      const T wv = wk[i * g.kw + j];
      const int64_t lo = in.lo[j], hi = in.hi[j];
      T* d = xr + (j * g.dw - g.pad_l) * xw;
      for (int64_t ow = lo; ow < hi; ++ow) d[ow * sw * xw] += wv * gyr[ow * yw];
      for_each_edge(lo, hi, g.OW, [&](int64_t ow) {
        const int64_t iw = g.in_col(ow, j);
        if (iw >= 0) xr[iw * xw] += wv * gyr[ow * yw];
      });
    }
  }
}

// Lanes of independent partial sums: the reduction vectorizes without reassociating anything, so the result is
// the same bits on every run and every ISA width that uses the same lane count.
constexpr int kLanes = 16;

// lanes[(i, j), l] and edge[(i, j)] accumulate gy[oh, ow] * x[ih(oh, i), iw(ow, j)] over one output row.
template <typename T, bool Contig, int SW>
void grad_weight_row(const ConvGeometry& g, const Interior& in, const T* xp, Strides4 xs, const T* gyr, int64_t gyw,
                     int64_t oh, T* lanes, T* edge) {
  const int64_t sw = SW ? SW : g.sw, xw = Contig ? 1 : xs.w, yw = Contig ? 1 : gyw;
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t ih = g.in_row(oh, i);
    if (ih < 0) continue;
    const T* xr = xp + ih * xs.h;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t t = i * g.kw + j, lo = in.lo[j], hi = in.hi[j];
      const T* s = xr + (j * g.dw - g.pad_l) * xw;
      T* L = lanes + t * kLanes;
      int64_t ow = lo;
      for (; ow + kLanes <= hi; ow += kLanes)
        for (int l = 0; l < kLanes; ++l) L[l] += gyr[(ow + l) * yw] * s[(ow + l) * sw * xw];
      for (int l = 0; ow < hi; ++ow, ++l) L[l] += gyr[ow * yw] * s[ow * sw * xw];
      T e = 0;
      for_each_edge(lo, hi, g.OW, [&](int64_t o) {
        const int64_t iw = g.in_col(o, j);
        if (iw >= 0) e += gyr[o * yw] * xr[iw * xw];
      });
      edge[t] += e;
    }
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

template <typename T, bool Contig, int SW>
struct Forward {
  static void run(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys) {
    const Interior in(g);
    const int64_t mult = g.K / g.C;
    parallel_for(0, g.N * g.K, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> acc(g.OW);
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t n = plane / g.K, k = plane % g.K;
        const T* xp = x + n * xs.n + (k / mult) * xs.c;
        const T b = bias ? bias[k] : T(0);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          std::fill(acc.begin(), acc.end(), b);
          forward_row<T, Contig, SW>(g, in, xp, xs, w + k * g.kh * g.kw, oh, acc.data());
          T* yr = y + n * ys.n + k * ys.c + oh * ys.h;
          for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow * (Contig ? 1 : ys.w)] = acc[ow];
        }
      }
    });
  }
};

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
    const int64_t mult = g.K / g.C, taps = g.kh * g.kw;
    parallel_for(0, g.K, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> lanes(taps * kLanes), edge(taps);
      for (int64_t k = begin; k < end; ++k) {
        std::fill(lanes.begin(), lanes.end(), T(0));
        std::fill(edge.begin(), edge.end(), T(0));
        for (int64_t n = 0; n < g.N; ++n)
          for (int64_t oh = 0; oh < g.OH; ++oh)
            grad_weight_row<T, Contig, SW>(g, in, x + n * xs.n + (k / mult) * xs.c, xs,
                                           gy + n * gys.n + k * gys.c + oh * gys.h, gys.w, oh, lanes.data(),
                                           edge.data());
        for (int64_t t = 0; t < taps; ++t) {
          T s = edge[t];
          for (int l = 0; l < kLanes; ++l) s += lanes[t * kLanes + l];
          gw[k * taps + t] = s;
        }
      }
    });
  }
};

}  // namespace

template <typename T>
void depthwise_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys) {
  with_row_kernel<Forward, T>(g, xs.w == 1 && ys.w == 1, x, xs, w, bias, y, ys);
}

template <typename T>
void depthwise_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs) {
  with_row_kernel<GradInput, T>(g, gys.w == 1 && gxs.w == 1, gy, gys, w, gx, gxs);
}

template <typename T>
void depthwise_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
  with_row_kernel<GradWeight, T>(g, xs.w == 1 && gys.w == 1, x, xs, gy, gys, gw);
}

#define TORCHCONV_INSTANTIATE(T)                                                                                  \
  template void depthwise_forward<T>(const ConvGeometry&, const T*, Strides4, const T*, const T*, T*, Strides4); \
  template void depthwise_grad_input<T>(const ConvGeometry&, const T*, Strides4, const T*, T*, Strides4);       \
  template void depthwise_grad_weight<T>(const ConvGeometry&, const T*, Strides4, const T*, Strides4, T*);
TORCHCONV_INSTANTIATE(float)
TORCHCONV_INSTANTIATE(double)
#undef TORCHCONV_INSTANTIATE

}  // namespace torchconv
