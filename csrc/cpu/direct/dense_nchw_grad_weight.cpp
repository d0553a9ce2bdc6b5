// Any groups, rows with unit stride: the adjoint of dense_nchw_forward in the weight, reduced over output runs.
#include "cpu/direct/common.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// The taps of every run, built once per call so the reduction loops below do no per-run bookkeeping (a 56-wide row
// run holds only 4 vectors of work): run_taps[run * taps + t] is tap t as the run sees it, or absent (row outside).
struct RunTap {
  Tap tap;
  bool present;
};

// gw[k0 + kb, p] for kb < KB and the JMax (input channel, tap) pairs p = p0, p0 + 1, ... below p_end (p = c * taps +
// t, gw's own order): the sums over images, runs and vectors of gy[kb] times the input vector of each pair, in KB x
// JMax registers for the whole reduction. Slots range over pairs rather than the taps of one channel, so a 1x1 or
// 2x2 kernel still fills them. Step is the input distance between lanes (1 or 2, with gy rows contiguous; 0: any
// distance in both); vectors where the walk says every lane of every tap is inside load without masks.
template <typename T, int KB, int JMax, int Step>
void grad_weight_block(const Walk<T>& wk, const RunTap* run_taps, int64_t p0, int64_t p_end, const T* xg,
                       Strides4 xs, const T* gyk, Strides4 gys, T* gwk, int64_t gw_k) {
  constexpr int V = Vec<T>::size;
  int64_t xc[JMax], t_of[JMax];  // each slot's channel offset in x and tap
  bool used[JMax];
  for (int s = 0; s < JMax; ++s) {
    used[s] = p0 + s < p_end;
    xc[s] = used[s] ? (p0 + s) / wk.taps * xs.c : 0;
    t_of[s] = used[s] ? (p0 + s) % wk.taps : 0;
  }
  Vec<T> acc[KB][JMax];
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 16
    for (int s = 0; s < JMax; ++s) acc[kb][s] = Vec<T>::zero();
  for (int64_t n = 0; n < wk.g.N; ++n)
    for (int64_t run = 0; run < wk.runs; ++run) {
      const RunTap* rt = run_taps + run * wk.taps;
      const T* x_at[JMax];  // each slot's input at run position 0, or null when absent
      Tap tap[JMax];
#pragma GCC unroll 16
      for (int s = 0; s < JMax; ++s) {
        tap[s] = rt[t_of[s]].tap;
        x_at[s] = used[s] && rt[t_of[s]].present ? xg + n * xs.n + xc[s] + tap[s].xoff : nullptr;
      }
      const T* gyr = gyk + n * gys.n + wk.y_offset(run);
      auto vector = [&](int64_t q, auto masked) __attribute__((always_inline)) {
        constexpr bool Masked = decltype(masked)::value;
        const Mask out = Masked ? wk.run_mask(q) : 0;
        Vec<T> gv[KB];
#pragma GCC unroll 8
        for (int kb = 0; kb < KB; ++kb)
          gv[kb] = simd::load_lanes<Step ? 1 : 0, Masked>(gyr + kb * gys.c + q * wk.ystep, wk.ystep, out);
#pragma GCC unroll 16
        for (int s = 0; s < JMax; ++s) {
          if (!x_at[s]) continue;
          const Vec<T> xv = simd::load_lanes<Step, Masked>(x_at[s] + q * (Step ? Step : wk.xstep), wk.xstep,
                                                           Masked ? wk.tap_mask(tap[s], q) & out : 0);
#pragma GCC unroll 8
          for (int kb = 0; kb < KB; ++kb) acc[kb][s] = fma(gv[kb], xv, acc[kb][s]);
        }
      };
      for (int64_t q = 0; q < wk.len; q += V) {
        if (wk.full[q / V]) vector(q, Constant<false>{});
        else vector(q, Constant<true>{});
      }
    }
  // The KB * JMax sums, V at a time (a power of two times V, or fewer than V).
  // (Copied out first: taking acc's address would keep it in memory through the whole reduction.)
  constexpr int A = KB * JMax, Chunk = A < V ? A : V;
  Vec<T> flat[A];
#pragma GCC unroll 16
  for (int a = 0; a < A; ++a) flat[a] = acc[a / JMax][a % JMax];
  for (int a0 = 0; a0 < A; a0 += Chunk) {
    T sums[V];
    if (Chunk == V) simd::sum_each(flat + a0, sums);
    else for (int a = 0; a < Chunk; ++a) sums[a] = flat[a0 + a].sum();
    for (int a = a0; a < a0 + Chunk; ++a)
      if (used[a % JMax]) gwk[a / JMax * gw_k + p0 + a % JMax] = sums[a - a0];
  }
}

// gw[k, c, tap] = sum over n and positions of gy[n, k, q] * x[n, c, tap at q]. A thread owns KB output channels
// and sums a block of up to JMax (channel, tap) pairs for them at a time (grad_weight_block). The pairs are split
// into blocks of equal size (9 with JMax 4: 3 + 3 + 3, not 4 + 4 + 1), as each block is one more pass over gy.
template <typename T, int KB>
struct GradWeight {
  static void run(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
    constexpr int JMax = simd::kAccumulators / KB > 1 ? simd::kAccumulators / KB : 1;
    const Walk<T> wk(g, xs, gys);
    const int64_t Cg = g.Cg(), Kg = g.Kg(), kblocks = Kg / KB, pairs = Cg * wk.taps;
    const int64_t pblocks = (pairs + JMax - 1) / JMax, J = (pairs + pblocks - 1) / pblocks;
    Scratch<RunTap> run_taps(wk.runs * wk.taps);
    {
      Scratch<Tap> taps(wk.taps);
      for (int64_t i = 0; i < wk.runs * wk.taps; ++i) run_taps[i] = {{0, 0, 0}, false};
      for (int64_t run = 0; run < wk.runs; ++run) {
        const int64_t nt = wk.run_taps(run, taps.p);
        for (int64_t t = 0; t < nt; ++t) run_taps[run * wk.taps + taps[t].widx] = {taps[t], true};
      }
    }
    const auto block = wk.ystep != 1   ? &grad_weight_block<T, KB, JMax, 0>
                       : wk.xstep == 1 ? &grad_weight_block<T, KB, JMax, 1>
                       : wk.xstep == 2 ? &grad_weight_block<T, KB, JMax, 2>
                                       : &grad_weight_block<T, KB, JMax, 0>;
    parallel_for(0, g.groups * kblocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t grp = item / kblocks, k0 = grp * Kg + item % kblocks * KB;
        for (int64_t p0 = 0; p0 < pairs; p0 += J)
          block(wk, run_taps.p, p0, p0 + J < pairs ? p0 + J : pairs, x + grp * Cg * xs.c, xs, gy + k0 * gys.c, gys,
                gw + k0 * pairs, pairs);
        if (g.mode == PadMode::Zeros) continue;
        for (int64_t n = 0; n < g.N; ++n)
          for (int64_t run = 0; run < wk.runs; ++run)
            wk.for_each_edge(run, [&](int64_t q, int64_t oh, int64_t ow) {
              wk.for_each_padded_tap(oh, ow, [&](int64_t i, int64_t j, int64_t ih, int64_t iw) {
                for (int kb = 0; kb < KB; ++kb) {
                  const T gv = gy[n * gys.n + (k0 + kb) * gys.c + wk.y_offset(run) + q * wk.ystep];
                  for (int64_t c = 0; c < Cg; ++c)
                    gw[(k0 + kb) * pairs + c * wk.taps + i * g.kw + j] +=
                        gv * x[n * xs.n + (grp * Cg + c) * xs.c + ih * xs.h + iw * xs.w];
                }
              });
            });
      }
    });
  }
};

template <typename T>
void dense_nchw_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw, void*) {
  with_channel_block<GradWeight, T>(g.Kg(), g, x, xs, gy, gys, gw);
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(dense_nchw_grad_weight, grad_weight)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
