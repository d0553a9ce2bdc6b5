#include "cpu/nonfinite.h"

#include <cmath>

namespace torchconv {
namespace {

template <typename T>
bool any_nonfinite(const T* p, int64_t n, int64_t step = 1) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i * step])) return true;
  return false;
}

// Whether some output has every tap in the padding: a row whose tap rows are all outside, or such a column.
bool some_output_reads_only_padding(const ConvGeometry& g) {
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    bool all_out = true;
    for (int64_t i = 0; i < g.kh && all_out; ++i) all_out = g.in_row(oh, i) < 0;
    if (all_out) return true;
  }
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    bool all_out = true;
    for (int64_t j = 0; j < g.kw && all_out; ++j) all_out = g.in_col(ow, j) < 0;
    if (all_out) return true;
  }
  return false;
}

}  // namespace

template <typename T>
bool forward_weight_nonfinite(const ConvGeometry& g, const T* w, const T* y, Strides4 ys) {
  const int64_t per_k = g.Cg() * g.kh * g.kw;
  int64_t r0, r1, c0, c1;
  ConvGeometry::interior_range_all_taps(-g.pad_t, g.sh, g.kh, g.dh, g.H, g.OH, r0, r1);
  ConvGeometry::interior_range_all_taps(-g.pad_l, g.sw, g.kw, g.dw, g.W, g.OW, c0, c1);
  for (int64_t k = 0; k < g.K; ++k) {
    // An output whose taps all read inside sums every weight of channel k times a value: finite, so are they.
    if (r0 < r1 && c0 < c1 && std::isfinite(y[k * ys.c + r0 * ys.h + c0 * ys.w])) continue;
    if (any_nonfinite(w + k * per_k, per_k)) return true;
  }
  return false;
}

template <typename T>
bool grad_input_weight_nonfinite(const ConvGeometry& g, const T* w, const T* gx, Strides4 gxs) {
  const int64_t Cg = g.Cg(), Kg = g.Kg(), taps = g.kh * g.kw;
  if (g.sh == 1 && g.sw == 1) {
    // At unit stride, input row ih receives tap i from output row ih + pad_t - i * dh: the rows (and columns) where
    // that is inside gy for every tap sum every weight of their channel times a value.
    int64_t r0, r1, c0, c1;
    ConvGeometry::interior_range_all_taps(g.pad_t - (g.kh - 1) * g.dh, 1, g.kh, g.dh, g.OH, g.H, r0, r1);
    ConvGeometry::interior_range_all_taps(g.pad_l - (g.kw - 1) * g.dw, 1, g.kw, g.dw, g.OW, g.W, c0, c1);
    if (r0 < r1 && c0 < c1) {
      for (int64_t c = 0; c < g.C; ++c) {
        if (std::isfinite(gx[c * gxs.c + r0 * gxs.h + c0 * gxs.w])) continue;
        for (int64_t k = c / Cg * Kg; k < (c / Cg + 1) * Kg; ++k)
          if (any_nonfinite(w + (k * Cg + c % Cg) * taps, taps)) return true;
      }
      return false;
    }
  }
  return any_nonfinite(w, g.K * Cg * taps);
}

template <typename T>
bool grad_weight_nonfinite(const ConvGeometry& g, const T* gy, Strides4 gys, const T* gw) {
  if (any_nonfinite(gw, g.K * g.Cg() * g.kh * g.kw)) return true;
  if (g.mode != PadMode::Zeros || !some_output_reads_only_padding(g)) return false;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        if (any_nonfinite(gy + n * gys.n + k * gys.c + oh * gys.h, g.OW, gys.w)) return true;
  return false;
}

#define TORCHCONV_INSTANTIATE(T)                                                                  \
  template bool forward_weight_nonfinite<T>(const ConvGeometry&, const T*, const T*, Strides4);   \
  template bool grad_input_weight_nonfinite<T>(const ConvGeometry&, const T*, const T*, Strides4); \
  template bool grad_weight_nonfinite<T>(const ConvGeometry&, const T*, Strides4, const T*);
TORCHCONV_INSTANTIATE(float)
TORCHCONV_INSTANTIATE(double)
#undef TORCHCONV_INSTANTIATE

}  // namespace torchconv
