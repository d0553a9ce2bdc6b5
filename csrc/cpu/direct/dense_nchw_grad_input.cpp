// Any groups, rows with unit stride: the adjoint of dense_nchw_forward in the input, as a scatter.
#include "cpu/direct/common.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// The exact adjoint of dense_nchw_forward, as a scatter: gx[c, tap at q] += sum over k of w[k, c, tap] * gy[k, q]. A
// thread
// owns (image, group) and so every gx plane it writes.
template <typename T, int KB>
struct GradInputScatter {
  static void run(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs) {
    constexpr int V = Vec<T>::size;
    const Walk<T> wk(g, gxs, gys);
    const int64_t Cg = g.Cg(), Kg = g.Kg(), wstride = Cg * wk.taps;
    parallel_for(0, g.N * g.groups, 1, [&](int64_t begin, int64_t end) {
      Scratch<Tap> taps(wk.taps);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t n = item / g.groups, grp = item % g.groups;
        T* gxg = gx + n * gxs.n + grp * Cg * gxs.c;
        const T* gyg = gy + n * gys.n + grp * Kg * gys.c;
        const T* wg = w + grp * Kg * wstride;
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t h = 0; h < g.H; ++h)
            for (int64_t wi = 0; wi < g.W; ++wi) gxg[c * gxs.c + h * gxs.h + wi * gxs.w] = T(0);
        for (int64_t run = 0; run < wk.runs; ++run) {
          const int64_t nt = wk.run_taps(run, taps.p);
          const T* gyr = gyg + wk.y_offset(run);
          for (int64_t q = 0; q < wk.len; q += V) {
            const Mask out = wk.run_mask(q);
            for (int64_t k0 = 0; k0 < Kg; k0 += KB) {
              Vec<T> gv[KB];
              for (int kb = 0; kb < KB; ++kb)
                gv[kb] = simd::load_strided(gyr + (k0 + kb) * gys.c + q * wk.ystep, wk.ystep, out);
              for (int64_t c = 0; c < Cg; ++c)
                for (int64_t t = 0; t < nt; ++t) {
                  const Mask m = wk.tap_mask(taps[t], q) & out;
                  if (!m) continue;
                  Vec<T> s = Vec<T>::zero();
                  for (int kb = 0; kb < KB; ++kb)
                    s = fma(Vec<T>::set1(wg[(k0 + kb) * wstride + c * wk.taps + taps[t].widx]), gv[kb], s);
                  T* d = gxg + c * gxs.c + taps[t].xoff + q * wk.xstep;
                  simd::store_strided(simd::load_strided(d, wk.xstep, m) + s, d, wk.xstep, m);
                }
            }
          }
          if (g.mode == PadMode::Zeros) continue;
          wk.for_each_edge(run, [&](int64_t q, int64_t oh, int64_t ow) {
            wk.for_each_padded_tap(oh, ow, [&](int64_t i, int64_t j, int64_t ih, int64_t iw) {
              for (int64_t c = 0; c < Cg; ++c) {
                T s = 0;
                for (int64_t k = 0; k < Kg; ++k)
                  s += wg[k * wstride + c * wk.taps + i * g.kw + j] * gyr[k * gys.c + q * wk.ystep];
                gxg[c * gxs.c + ih * gxs.h + iw * gxs.w] += s;
              }
            });
          });
        }
      }
    });
  }
};

template <typename T>
void dense_nchw_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs, void*) {
  with_channel_block<GradInputScatter, T>(g.Kg(), g, gy, gys, w, gx, gxs);
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(dense_nchw_grad_input, grad_input)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
