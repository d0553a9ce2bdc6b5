// Any groups, rows with unit stride: a register tile of KB output channels x R vectors of output positions.
#include "cpu/direct/common.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

// Where the R vectors of a register tile lie, relative to the first: dx input and dy output elements apart, and
// dm vectors apart in the walk's mask table. Along a run: (V * xstep, V * ystep, 1); across R neighbouring rows at
// the same columns: (sh * xs.h, ys.h, 0), which gives short rows enough independent accumulators too.
struct TileShape {
  int64_t dx, dy, dm;
};

// The register tile's two steps shared by the forward tiles: the bias (or zero) in every accumulator, and one tap:
// the tap's weights for KB output channels, each broadcast once and multiplied into all R input vectors.
template <typename T, int KB, int R>
__attribute__((always_inline)) inline void init_tile(Vec<T> (&acc)[KB][R], const T* bias) {
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[kb][r] = bias ? Vec<T>::set1(bias[kb]) : Vec<T>::zero();
}
template <typename T, int KB, int R>
__attribute__((always_inline)) inline void tap_into_tile(Vec<T> (&acc)[KB][R], const Vec<T>* xv, const T* wt,
                                                         int64_t wstride) {
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb) {
    const Vec<T> wv = Vec<T>::set1(wt[kb * wstride]);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[kb][r] = fma(wv, xv[r], acc[kb][r]);
  }
}

// y[kb, vector r] = bias + sum over c and taps of w[kb, c, tap] * x[c, tap of vector r], for KB output channels and
// the R vectors of a tile at run position q: each loaded input vector feeds KB FMAs, each broadcast weight R. Step
// is the input distance between lanes (1, 2, or 0 for any); a tile that is not Masked reads and writes every lane.
template <typename T, int KB, int R, int Step, bool Masked>
inline void forward_tile(const Walk<T>& wk, const Tap* taps, int64_t ntaps, TileShape sh, const T* x, int64_t Cg,
                         const T* w, const T* bias, int64_t q, T* y) {
  constexpr int V = Vec<T>::size;
  const int64_t wstride = Cg * wk.taps, xstep = Step ? Step : wk.xstep, xc_stride = wk.xs.c;
  const Mask* mq = wk.masks.p + q / V * wk.mcols;
  Vec<T> acc[KB][R];
  init_tile(acc, bias);
  // One tap: R input vectors, each into KB accumulators.
  auto tap = [&](const T* xt, const T* wt, int64_t mc) __attribute__((always_inline)) {
    Vec<T> xv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      xv[r] = simd::load_lanes<Step, Masked>(xt + r * sh.dx, xstep, Masked ? mq[r * sh.dm * wk.mcols + mc] : 0);
    tap_into_tile(acc, xv, wt, wstride);
  };
  for (int64_t c = 0; c < Cg; ++c) {
    const T* xc = x + c * xc_stride + q * xstep;
    const T* wc = w + c * wk.taps;
    for (int64_t t = 0; t < ntaps; ++t) tap(xc + taps[t].xoff, wc + taps[t].widx, taps[t].mc);
  }
  const int64_t ystep = wk.ystep, yc = wk.ys.c;
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      T* d = y + kb * yc + q * ystep + r * sh.dy;
      if (!Masked && ystep == 1) acc[kb][r].store(d);
      else simd::store_strided(acc[kb][r], d, ystep, wk.run_mask(q + r * sh.dm * V));
    }
}

// The stride-2 tile for unit column dilation on contiguous input rows (ResNet's 3x3/2 and 1x1/2, the 7x7/2 stem,
// ResNeXt's strided 3x3): taps 2s and 2s + 1 of a kernel row read the even and the odd elements of the same 2V
// input elements, so one pair of loads and two permutes serve both, where load_even loads a pair per tap. The
// loads are masked to the input row, which makes the padded columns read as zeros. P = (kw + 1) / 2 pairs a row.
template <typename T, int KB, int R, int P>
inline void forward_tile_s2(const Walk<T>& wk, const Tap* taps, int64_t ntaps, TileShape sh, const T* x, int64_t Cg,
                            const T* w, const T* bias, int64_t q, T* y) {
  constexpr int V = Vec<T>::size;
  const ConvGeometry& g = wk.g;
  const int64_t kw = g.kw, wstride = Cg * wk.taps;
  Mask lo[R][P], hi[R][P];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int s = 0; s < P; ++s) {
      const int64_t e0 = 2 * (q + r * sh.dm * V + s) - g.pad_l;  // input column of the pair's first element
      lo[r][s] = lane_range(-e0, g.W - e0, V), hi[r][s] = lane_range(-e0 - V, g.W - e0 - V, V);
    }
  Vec<T> acc[KB][R];
  init_tile(acc, bias);
  for (int64_t c = 0; c < Cg; ++c) {
    const T* xc = x + c * wk.xs.c + 2 * q;
    const T* wc = w + c * wk.taps;
    for (int64_t t = 0; t < ntaps; t += kw) {  // the taps of one kernel row, from column 0
      const T* xr = xc + taps[t].xoff;
      const T* wr = wc + taps[t].widx;
#pragma GCC unroll 4
      for (int s = 0; s < P; ++s) {
        Vec<T> a[R], b[R], xv[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          a[r] = Vec<T>::load(xr + r * sh.dx + 2 * s, lo[r][s]);
          b[r] = Vec<T>::load(xr + r * sh.dx + 2 * s + V, hi[r][s]);
          xv[r] = Vec<T>::even(a[r], b[r]);
        }
        tap_into_tile(acc, xv, wr + 2 * s, wstride);
        if (2 * s + 1 == kw) break;
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) xv[r] = Vec<T>::odd(a[r], b[r]);
        tap_into_tile(acc, xv, wr + 2 * s + 1, wstride);
      }
    }
  }
#pragma GCC unroll 8
  for (int kb = 0; kb < KB; ++kb)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      simd::store_strided(acc[kb][r], y + kb * wk.ys.c + q * wk.ystep + r * sh.dy, wk.ystep,
                          wk.run_mask(q + r * sh.dm * V));
}

// Every vector of `rows` consecutive runs of KB output channels (rows == R: a block of interior rows, tiled across
// them; rows == 1: one run, tiled along it where it is long enough). Tiles where the walk says every lane is inside
// read and write without masks. P > 0: the stride-2 pair tile above.
template <typename T, int KB, int Step, int P>
void forward_runs(const Walk<T>& wk, const Tap* taps, int64_t ntaps, int64_t rows, const T* x, int64_t Cg,
                  const T* w, const T* bias, T* y) {
  constexpr int V = Vec<T>::size, R = Step ? tile_vectors(KB) : 1, RA = R < 4 ? R : 4;
  // A tile of N vectors at q.
  auto tile = [&](auto n, TileShape shape, int64_t q) __attribute__((always_inline)) {
    constexpr int N = decltype(n)::value;
    if constexpr (P > 0) forward_tile_s2<T, KB, N, P>(wk, taps, ntaps, shape, x, Cg, w, bias, q, y);
    else if (Step && wk.full_tile(q, shape.dm ? N : 1))
      forward_tile<T, KB, N, Step, false>(wk, taps, ntaps, shape, x, Cg, w, bias, q, y);
    else forward_tile<T, KB, N, Step, true>(wk, taps, ntaps, shape, x, Cg, w, bias, q, y);
  };
  int64_t q = 0;
  if (rows == R && R > 1) {
    const TileShape across{wk.g.sh * wk.xs.h, wk.ys.h, 0};
    for (; q < wk.len; q += V) tile(Constant<R>{}, across, q);
    return;
  }
  const TileShape along{V * wk.xstep, V * wk.ystep, 1};
  for (; wk.len - q > (RA - 1) * V; q += RA * V) tile(Constant<RA>{}, along, q);
  for (; q < wk.len; q += V) tile(Constant<1>{}, along, q);
}

// The run function for this call: the input step as a constant for 1 and 2, and the pair tile at stride 2 where
// it applies.
template <typename T, int KB>
auto pick_forward_runs(const Walk<T>& wk) {
  const ConvGeometry& g = wk.g;
  if (g.sw == 2 && wk.xs.w == 1 && g.dw == 1 && g.kw <= 8) {
    const int64_t pairs = (g.kw + 1) / 2;
    return pairs == 1 ? &forward_runs<T, KB, 2, 1> : pairs == 2 ? &forward_runs<T, KB, 2, 2>
         : pairs == 3 ? &forward_runs<T, KB, 2, 3> : &forward_runs<T, KB, 2, 4>;
  }
  return wk.xstep == 1 ? &forward_runs<T, KB, 1, 0> : wk.xstep == 2 ? &forward_runs<T, KB, 2, 0>
                                                                    : &forward_runs<T, KB, 0, 0>;
}

// Input bytes a band of output rows may read (all channels of a group): small enough that the channel blocks of
// the band re-read it from this core's L2 (1 MiB on Zen 4), where a walk over whole planes per block streams a
// plane that does not fit from L3 once per block.
constexpr int64_t kBandBytes = int64_t(256) << 10;

// How a call splits into work items (image, group, band of output rows, chunk of channel blocks). Bands of rows
// keep a large input plane in L2 across the blocks; chunks split the blocks where there are too few bands to give
// every thread several items.
struct ForwardItems {
  int64_t band_rows, bands, chunks, count;
  template <typename T>
  ForwardItems(const Walk<T>& wk, int64_t blocks, int64_t R) {
    const ConvGeometry& g = wk.g;
    const int64_t row_bytes = g.Cg() * g.W * int64_t(sizeof(T)), ekh = (g.kh - 1) * g.dh;
    // As many bands as it takes for each to fit the budget, then as even as the row tile R allows.
    band_rows = wk.runs > 1 ? wk.runs : 1;
    if (!wk.flat && row_bytes > 0 && ekh * row_bytes < kBandBytes) {
      int64_t fit = ((kBandBytes / row_bytes - ekh - 1) / g.sh + 1) / R * R;  // rows whose input fits
      fit = fit > R ? fit : R;
      const int64_t n = (band_rows + fit - 1) / fit;
      band_rows = ((band_rows + n - 1) / n + R - 1) / R * R;
    }
    bands = (wk.runs + band_rows - 1) / band_rows;
    const int64_t others = g.N * g.groups * bands, want = int64_t(4) * max_threads();
    chunks = others >= want || others == 0 ? 1 : (want + others - 1) / others;
    chunks = chunks < blocks ? chunks : blocks;
    count = others * chunks;
  }
};

template <typename T, int KB>
struct Forward {
  static void run(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys) {
    const Walk<T> wk(g, xs, ys);
    const int64_t Cg = g.Cg(), Kg = g.Kg(), blocks = Kg / KB, wstride = Cg * wk.taps;
    const auto runs = pick_forward_runs<T, KB>(wk);
    // Row runs inside [r0, r1) all see every tap; blocks of R of them are tiled across rows.
    const int64_t R = wk.xstep == 1 || wk.xstep == 2 ? tile_vectors(KB) : 1;
    const ForwardItems it(wk, blocks, R);
    parallel_for(0, it.count, 1, [&](int64_t begin, int64_t end) {
      Scratch<Tap> taps(wk.taps);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t chunk = item % it.chunks, band = item / it.chunks % it.bands;
        const int64_t grp = item / (it.chunks * it.bands) % g.groups, n = item / (it.chunks * it.bands * g.groups);
        const int64_t lo = band * it.band_rows, hi = lo + it.band_rows < wk.runs ? lo + it.band_rows : wk.runs;
        // The interior rows of the band, where blocks of R rows are tiled across.
        const int64_t in_lo = wk.r0 > lo ? wk.r0 : lo, in_hi = wk.r1 < hi ? wk.r1 : hi;
        const T* xg = x + n * xs.n + grp * Cg * xs.c;
        for (int64_t blk = chunk * blocks / it.chunks; blk < (chunk + 1) * blocks / it.chunks; ++blk) {
          const int64_t k0 = grp * Kg + blk * KB;
          const T* wk0 = w + k0 * wstride;
          const T* bk = bias ? bias + k0 : nullptr;
          T* yk = y + n * ys.n + k0 * ys.c;
          for (int64_t r = lo; r < hi;) {
            // A block of R interior rows; the last block of the band's interior ends at its end and may redo rows of
            // the one before (the forward only stores, so a row computed twice comes out the same).
            int64_t first = r, rows = 1;
            if (!wk.flat && R > 1 && r >= in_lo && in_hi - in_lo >= R && r < in_hi)
              first = r + R <= in_hi ? r : in_hi - R, rows = R;
            runs(wk, taps.p, wk.run_taps(first, taps.p), rows, xg, Cg, wk0, bk, yk + wk.y_offset(first));
            r = first + rows;
            if (g.mode == PadMode::Zeros) continue;
            for (int64_t row = first; row < first + rows; ++row) {
              T* yr = yk + wk.y_offset(row);
              wk.for_each_edge(row, [&](int64_t q, int64_t oh, int64_t ow) {
                wk.for_each_padded_tap(oh, ow, [&](int64_t i, int64_t j, int64_t ih, int64_t iw) {
                  for (int kb = 0; kb < KB; ++kb) {
                    T s = 0;
                    for (int64_t c = 0; c < Cg; ++c)
                      s += wk0[kb * wstride + c * wk.taps + i * g.kw + j] * xg[c * xs.c + ih * xs.h + iw * xs.w];
                    yr[kb * ys.c + q * wk.ystep] += s;
                  }
                });
              });
            }
          }
        }
      }
    });
  }
};

template <typename T>
void dense_nchw_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y,
                        Strides4 ys, void*) {
  with_channel_block<Forward, T>(g.Kg(), g, x, xs, w, bias, y, ys);
}

}  // namespace

TORCHCONV_DEFINE_KERNEL(dense_nchw_forward, forward)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
