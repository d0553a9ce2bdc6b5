// The adjoint of dw_nhwc_forward in the input, on channels_last tensors, for strides above 1 and every padding mode
// other than zero padding at unit stride (that is flipdw_nhwc_grad_input).
#include "cpu/direct/common.h"
#include "cpu/direct/dw_nhwc.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// gx pixels [iw0, iw0 + B) of one input row for the channels [c0, c0 + V), in zero padding with a K x K kernel at
// column stride S and no column dilation, where (iw0 + pad_l) % S == 0 and every tap reads inside gy. Pixel p then
// takes tap column j when p - j = S d, from gy column (iw0 + pad_l) / S + d, the same for every group of pixels: each
// gy vector is loaded once and fed to every (pixel, tap column) pair that reads it, with no per-pixel tap list.
// gyr[i]: the gy row of kernel row i (null: no output row reaches this input row through it).
template <typename T, bool Masked, int K, int S, int B>
inline void along_c_grad_input_block(const ConvGeometry& g, const T* const* gyr, Strides4 gys, const T* table,
                                     int64_t c0, Mask m, int64_t iw0, T* gxr, Strides4 gxs) {
  constexpr int Dmin = -((K - 1) / S), Dmax = (B - 1) / S;
  const int64_t base = (iw0 + g.pad_l) / S;
  Vec<T> acc[B];
#pragma GCC unroll 8
  for (int p = 0; p < B; ++p) acc[p] = Vec<T>::zero();
#pragma GCC unroll 5
  for (int i = 0; i < K; ++i) {
    if (!gyr[i]) continue;
    Vec<T> wv[K];
#pragma GCC unroll 5
    for (int j = 0; j < K; ++j) wv[j] = load_channels<Masked>(table + (i * K + j) * g.C + c0, m);
    const T* gu = gyr[i] + base * gys.w + c0;
#pragma GCC unroll 16
    for (int d = Dmin; d <= Dmax; ++d) {
      const Vec<T> gv = load_channels<Masked>(gu + d * gys.w, m);
#pragma GCC unroll 5
      for (int j = 0; j < K; ++j)
        if (S * d + j >= 0 && S * d + j < B) acc[S * d + j] = fma(wv[j], gv, acc[S * d + j]);
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < B; ++p) {
    T* d = gxr + (iw0 + p) * gxs.w + c0;
    store_channels<Masked>(acc[p], d, m);
  }
}

// One row of gx in the zero-padded gather, for every channel block: blocks of pixels through
// along_c_grad_input_block where it applies (K > 0), and each other pixel from its own list of the taps that reach it.
// cols[iw * kw + j]: the gy column whose tap j reads input column iw, or -1; rows[i]: the gy row of kernel row i, or
// -1; wof / gof: room for kh * kw tap offsets.
template <typename T, int K, int S>
void along_c_grad_input_pixels(const ConvGeometry& g, const T* gyn, Strides4 gys, const T* table, const int64_t* cols,
                               const int64_t* rows, const T* const* gyr, int64_t* wof, int64_t* gof, T* gxr,
                               Strides4 gxs) {
  constexpr int V = Vec<T>::size;
  // Whether a block of B pixels starts at iw: aligned to the stride, and every gy column it reads inside.
  auto fits = [&](int64_t iw, auto b) {
    constexpr int B = decltype(b)::value, Dmin = K > 0 ? -((K - 1) / S) : 0, Dmax = (B - 1) / S;
    const int64_t base = (iw + g.pad_l) / S;
    return K > 0 && (iw + g.pad_l) % S == 0 && iw + B <= g.W && base + Dmin >= 0 && base + Dmax < g.OW;
  };
  auto block = [&](int64_t iw, auto b) {
    constexpr int B = decltype(b)::value;
    if constexpr (K > 0) {
      int64_t c0 = 0;
      for (; c0 + V <= g.C; c0 += V)
        along_c_grad_input_block<T, false, K, S, B>(g, gyr, gys, table, c0, 0, iw, gxr, gxs);
      if (c0 < g.C)
        along_c_grad_input_block<T, true, K, S, B>(g, gyr, gys, table, c0, lane_range(0, g.C - c0, V), iw, gxr, gxs);
    }
  };
  for (int64_t iw = 0; iw < g.W;) {
    // Blocks of 8, then of S at the row's end (one phase each), where the tap lists would cost most.
    if (fits(iw, Constant<8>{})) {
      block(iw, Constant<8>{});
      iw += 8;
      continue;
    }
    if (fits(iw, Constant<S>{})) {
      block(iw, Constant<S>{});
      iw += S;
      continue;
    }
    // The taps that reach this pixel, as (weight row, gy pixel) offsets, found once for all channel blocks.
    int64_t nt = 0;
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw && rows[i] >= 0; ++j)
        if (cols[iw * g.kw + j] >= 0)
          wof[nt] = (i * g.kw + j) * g.C, gof[nt++] = rows[i] * gys.h + cols[iw * g.kw + j] * gys.w;
    for (int64_t c0 = 0; c0 < g.C; c0 += V) {
      const Mask m = lane_range(0, g.C - c0, V);
      Vec<T> acc = Vec<T>::zero();
      for (int64_t t = 0; t < nt; ++t)
        acc = fma(Vec<T>::load(table + wof[t] + c0, m), Vec<T>::load(gyn + gof[t] + c0, m), acc);
      acc.store(gxr + iw * gxs.w + c0, m);
    }
    ++iw;
  }
}

// The exact adjoint of dw_nhwc_forward. In zero padding, as a gather: gx[ih, iw] = sum of w[i, j] * gy[oh, ow] over
// the taps whose output (oh, ow) = ((ih + pad_t - i dh) / sh, (iw + pad_l - j dw) / sw) is whole and inside, so each
// gx vector is summed in a register (at stride 2 a quarter of the taps have one) and a thread owns rows of gx. The
// other modes fold several taps onto one input element, so they scatter through the padding map instead, a thread
// owning (image, channel block). Either way each gx element is summed in one fixed order. (Unit stride with zero
// padding does not come here: that is flipdw_nhwc_grad_input.)
template <typename T>
void dw_nhwc_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs, void*) {
  constexpr int V = Vec<T>::size;
  const int64_t blocks = (g.C + V - 1) / V;
  Scratch<T> table(g.kh * g.kw * g.C);
  fill_taps_by_channel(g, w, table.p);
  if (g.mode == PadMode::Zeros) {
    // cols[iw * kw + j]: the output column whose tap j reads input column iw, or -1.
    Scratch<int64_t> cols(g.W * g.kw);
    for (int64_t iw = 0; iw < g.W; ++iw)
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t u = iw + g.pad_l - j * g.dw;
        cols[iw * g.kw + j] = u >= 0 && u % g.sw == 0 && u / g.sw < g.OW ? u / g.sw : -1;
      }
    auto pixels = &along_c_grad_input_pixels<T, 0, 1>;
    if (along_c_tiled_square(g))
      pixels = by_width_and_stride(g, [](auto k, auto s) { return &along_c_grad_input_pixels<T, k.value, s.value>; });
    parallel_for(0, g.N * g.H, 1, [&](int64_t begin, int64_t end) {
      Scratch<int64_t> rows(g.kh), wof(g.kh * g.kw), gof(g.kh * g.kw);
      Scratch<const T*> gyr(g.kh);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t n = item / g.H, ih = item % g.H;
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t u = ih + g.pad_t - i * g.dh;
          rows[i] = u >= 0 && u % g.sh == 0 && u / g.sh < g.OH ? u / g.sh : -1;
          gyr[i] = rows[i] < 0 ? nullptr : gy + n * gys.n + rows[i] * gys.h;
        }
        pixels(g, gy + n * gys.n, gys, table.p, cols.p, rows.p, gyr.p, wof.p, gof.p, gx + n * gxs.n + ih * gxs.h, gxs);
      }
    });
    return;
  }
  parallel_for(0, g.N * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / blocks, c0 = item % blocks * V;
      const Mask m = lane_range(0, g.C - c0, V);
      T* gxn = gx + n * gxs.n + c0;
      const T* gyn = gy + n * gys.n + c0;
      for (int64_t ih = 0; ih < g.H; ++ih)
        for (int64_t iw = 0; iw < g.W; ++iw) Vec<T>::zero().store(gxn + ih * gxs.h + iw * gxs.w, m);
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const Vec<T> gv = Vec<T>::load(gyn + oh * gys.h + ow * gys.w, m);
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t ih = g.in_row(oh, i);
            if (ih < 0) continue;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t iw = g.in_col(ow, j);
              if (iw < 0) continue;
              T* d = gxn + ih * gxs.h + iw * gxs.w;
              fma(Vec<T>::load(table.p + (i * g.kw + j) * g.C + c0, m), gv, Vec<T>::load(d, m)).store(d, m);
            }
          }
        }
    }
  });
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(dw_nhwc_grad_input, grad_input)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
