// Compiled once per ISA: TC_CPU_CAPABILITY names the inline namespace (cpu_default, cpu_avx2, cpu_avx512).
// Everything but the exported table has internal linkage, and no std:: container or algorithm is used, so no
// template instance built for a wider ISA can be shared with (and picked by the linker for) the baseline code.
//
// How the kernels see a convolution. Output positions are walked in runs that are contiguous in the output plane:
// one output row each, or, for stride 1 on planes narrower than two vectors (the 7x7 and 14x14 layers), the whole
// plane as one flat run, so a vector is not wasted on a short row. A tap (i, j) of the kernel reads the input at a
// fixed offset from each run position, and a lane mask says which positions read inside the input. The vector
// pass is therefore exactly the zero-padded convolution, with masked loads at the edges and no padded copy; for the
// other padding modes a scalar pass then adds the taps that fell in the padding, read through the padding map, at
// the few edge positions.
#include "kernels/direct.h"

#include <time.h>

#include <cstdlib>
#include <new>

#include "kernels/runtime.h"
#include "kernels/simd.h"

#ifndef TC_CPU_CAPABILITY
#error "compile direct.cpp with -DTC_CPU_CAPABILITY=cpu_<isa>"
#endif

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

using simd::lane_range;
using simd::Mask;
using simd::Vec;

// Per-thread scratch, as a stack: the kernels run on torch's pool threads, which live as long as the process, so
// each thread keeps one buffer, grown to the most it was ever asked for and reused, instead of a malloc and free per
// call and thread in glibc's per-thread arenas.
struct Arena {
  char* base = nullptr;
  int64_t cap = 0, top = 0, peak = 0;  // peak: the most in use at once, including what overflowed to the heap
  ~Arena() { std::free(base); }
};
thread_local Arena arena;

// An array from this thread's arena (or, while the arena is too small, the heap), 64-byte aligned so a vector of a
// packed buffer never straddles two cache lines (two loads on Zen 4). Scratch objects live in scopes, so they are
// released in the reverse order of their making. Internal linkage: see the top of the file for why not std::vector.
template <typename T>
struct Scratch {
  T* p;
  int64_t bytes;
  bool heap = false;
  explicit Scratch(int64_t n) : bytes((int64_t(sizeof(T)) * (n > 0 ? n : 1) + 63) / 64 * 64) {
    Arena& a = arena;
    if (a.top == 0 && a.cap < (a.peak > bytes ? a.peak : bytes)) {  // empty and too small: grow it
      std::free(a.base);
      a.cap = a.peak > bytes ? a.peak : bytes;
      a.base = static_cast<char*>(std::aligned_alloc(64, a.cap));
      if (!a.base) a.cap = 0;
    }
    a.peak = a.top + bytes > a.peak ? a.top + bytes : a.peak;
    if (a.top + bytes <= a.cap) {
      p = reinterpret_cast<T*>(a.base + a.top);
      a.top += bytes;
    } else {
      p = static_cast<T*>(std::aligned_alloc(64, bytes));
      heap = true;
      if (!p) throw std::bad_alloc();
    }
  }
  ~Scratch() {
    if (heap) std::free(p);
    else arena.top -= bytes;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T& operator[](int64_t i) const { return p[i]; }
};

// A compile-time value (a bool or an int) as an argument, to instantiate a generic lambda per case (not
// std::integral_constant: see above).
template <auto V>
struct Constant {
  static constexpr auto value = V;
};

constexpr int kMaxR = 8;  // vectors per register tile across rows; along a run at most 4, as runs are short

// A kernel tap as one run sees it: weight index i * kw + j, input offset of run position 0, and its column in the
// walk's table of masks.
struct Tap {
  int64_t widx, xoff, mc;
};

// Output columns where every tap reads inside the input row, so the vector loop needs no padding map.
inline void interior_all_taps(const ConvGeometry& g, int64_t& lo, int64_t& hi) {
  int64_t lo0 = 0, hi0 = 0, lo1 = 0, hi1 = 0;
  g.interior_cols(0, lo0, hi0);  // tap 0 starts last and tap kw - 1 ends first
  g.interior_cols(g.kw - 1, lo1, hi1);
  lo = lo0, hi = hi1 > lo ? hi1 : lo;
}

// The walk over one plane's output positions, shared by the three passes. xs: strides of the input-shaped tensor
// (x or gx), ys: of the output-shaped one (y or gy).
template <typename T>
struct Walk {
  static constexpr int V = Vec<T>::size;
  const ConvGeometry& g;
  Strides4 xs, ys;
  int64_t taps;          // kh * kw
  int64_t xstep, ystep;  // elements between neighbouring run positions, in the input and in the output
  bool flat;
  int64_t runs, len;               // runs per plane, positions per run
  int64_t vectors, mcols;          // vectors per run; masks per vector (kw for row runs, kh * kw for flat ones)
  int64_t lo_all, hi_all, r0, r1;  // columns where every tap is inside the row, rows where every tap row is
  Scratch<Mask> masks;             // [vector][mc]: lanes whose tap reads inside the input (and lies in the run)
  Scratch<bool> full;              // [vector]: every mask of the vector has every lane

  Walk(const ConvGeometry& geom, Strides4 x_strides, Strides4 y_strides, bool allow_flat = true)
      : g(geom), xs(x_strides), ys(y_strides), taps(g.kh * g.kw), xstep(g.sw * xs.w), ystep(ys.w),
        flat(allow_flat && g.sh == 1 && g.sw == 1 && g.OW == g.W && g.OW < 2 * V && xs.w == 1 && xs.h == g.W &&
             ys.w == 1 && ys.h == g.OW),
        runs(flat ? 1 : g.OH), len(flat ? g.OH * g.OW : g.OW), vectors((len + V - 1) / V),
        mcols(flat ? taps : g.kw), masks(vectors * mcols), full(vectors) {
    interior_all_taps(g, lo_all, hi_all);
    for (r0 = 0; r0 < g.OH && r0 * g.sh - g.pad_t < 0;) ++r0;
    for (r1 = r0; r1 < g.OH && r1 * g.sh - g.pad_t + (g.kh - 1) * g.dh < g.H;) ++r1;
    for (int64_t m = 0; m < vectors * mcols; ++m) masks[m] = 0;
    if (flat) {
      // Tap (i, j) reads inside at the columns [lo, hi) of each output row whose tap row is inside: one range of
      // the flat run per row, set a vector at a time (this runs on every call, so not position by position).
      for (int64_t j = 0; j < g.kw; ++j) {
        int64_t lo = 0, hi = 0;
        g.interior_cols(j, lo, hi);
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            const int64_t ih = oh - g.pad_t + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t a = oh * g.OW + lo, b = oh * g.OW + hi; a < b;) {
              const int64_t v = a / V, e = b < (v + 1) * V ? b : (v + 1) * V;
              masks[v * taps + i * g.kw + j] |= lane_range(a - v * V, e - v * V, V);
              a = e;
            }
          }
      }
    } else {
      for (int64_t j = 0; j < g.kw; ++j) {
        int64_t lo = 0, hi = 0;
        g.interior_cols(j, lo, hi);
        for (int64_t v = 0; v < vectors; ++v) masks[v * mcols + j] = lane_range(lo - v * V, hi - v * V, V);
      }
    }
    const Mask all = lane_range(0, V, V);
    for (int64_t v = 0; v < vectors; ++v) {
      full[v] = true;
      for (int64_t m = 0; m < mcols; ++m) full[v] = full[v] && masks[v * mcols + m] == all;
    }
  }

  // The taps of a run that read input rows (all of them for a flat run; in a row run, those whose row is inside).
  int64_t run_taps(int64_t run, Tap* t) const {
    int64_t n = 0;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = flat ? i * g.dh - g.pad_t : run * g.sh - g.pad_t + i * g.dh;
      if (!flat && (ih < 0 || ih >= g.H)) continue;
      for (int64_t j = 0; j < g.kw; ++j)
        t[n++] = {i * g.kw + j, ih * xs.h + (j * g.dw - g.pad_l) * xs.w, flat ? i * g.kw + j : j};
    }
    return n;
  }
  int64_t y_offset(int64_t run) const { return run * ys.h; }  // a flat run is run 0
  // Lanes of the vector at run position q (a multiple of V) whose tap t reads inside the input.
  Mask tap_mask(const Tap& t, int64_t q) const { return masks[q / V * mcols + t.mc]; }
  Mask run_mask(int64_t q) const { return lane_range(0, len - q, V); }
  // Whether the R vectors from run position q need no mask at all.
  bool full_tile(int64_t q, int R) const {
    for (int r = 0; r < R; ++r)
      if (!full[q / V + r]) return false;
    return true;
  }

  // Calls f(q, oh, ow) for the positions of a run where some tap falls in the padding.
  template <typename F>
  void for_each_edge(int64_t run, const F& f) const {
    for (int64_t oh = flat ? 0 : run; oh < (flat ? g.OH : run + 1); ++oh) {
      const int64_t q0 = flat ? oh * g.OW : 0;
      const bool inner = oh >= r0 && oh < r1;
      for (int64_t ow = 0; ow < g.OW; ++ow)
        if (!inner || ow < lo_all || ow >= hi_all) f(q0 + ow, oh, ow);
    }
  }
  // Calls f(i, j, ih, iw) for the taps of output (oh, ow) that fall in the padding, with the input element the
  // padding mode maps them to (never called in zero padding, where those taps read zeros).
  template <typename F>
  void for_each_padded_tap(int64_t oh, int64_t ow, const F& f) const {
    if (g.mode == PadMode::Zeros) return;
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t ih = oh * g.sh - g.pad_t + i * g.dh, iw = ow * g.sw - g.pad_l + j * g.dw;
        if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) continue;
        f(i, j, map_index(ih, g.H, g.mode), map_index(iw, g.W, g.mode));
      }
  }
};

// Output channels per register tile: the largest of 8, 4, 2, 1 that divides the channels of a group.
inline int channel_block(int64_t per_group) {
  return per_group % 8 == 0 ? 8 : per_group % 4 == 0 ? 4 : per_group % 2 == 0 ? 2 : 1;
}

template <template <typename, int> class K, typename T, typename... A>
void with_channel_block(int64_t per_group, A&&... a) {
  switch (channel_block(per_group)) {
    case 8: return K<T, 8>::run(a...);
    case 4: return K<T, 4>::run(a...);
    case 2: return K<T, 2>::run(a...);
    default: return K<T, 1>::run(a...);
  }
}

// Vectors per tile for KB channels: enough independent accumulators to hide the FMA latency, no more than fit.
constexpr int tile_vectors(int KB) {
  const int r = simd::kAccumulators / KB;
  return r < 1 ? 1 : r > kMaxR ? kMaxR : r;
}

// --- forward --------------------------------------------------------------------------------------------------

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

// --- depthwise forward, K x K kernel, stride S ---------------------------------------------------------------

// The MobileNet / EfficientNet layer: one input and one output channel per group, a 3x3 or 5x5 kernel, the same
// stride (1 or 2) both ways, no dilation, zero padding. With one channel there is no channel block to share a
// loaded vector, so the general tile loads one input vector per FMA. Here a tile of R output rows walks the
// (R - 1) * S + K input rows under it once per kernel column: each loaded vector feeds every (row, tap) pair that
// reads it, up to K FMAs at stride 1 (10 loads for 24 FMAs at 3x3, R = 8, instead of 24). Rows outside the
// input are skipped (their taps read zeros), so the top and bottom edges need no separate pass, and rows past the
// output are computed but not stored.
//
// for_each_tile_tap calls f(r, i, j, xv) for every output row r of the tile at (oh0, vector q) and tap (i, j) that
// reads inside the input, with xv the input vector it reads; the loops unroll, so r, i and j are constants in f.
template <typename T, int K, int S, int R, bool Masked, typename F>
__attribute__((always_inline)) inline void for_each_tile_tap(const Walk<T>& wk, const T* x, int64_t oh0, int64_t q,
                                                             const F& f) {
  constexpr int U = (R - 1) * S + K;  // input rows under the tile
  const ConvGeometry& g = wk.g;
  const int64_t ih0 = oh0 * S - g.pad_t, ulo = ih0 < 0 ? -ih0 : 0, uhi = g.H - ih0;
  const Mask* mq = wk.masks.p + q / Vec<T>::size * wk.mcols;
#pragma GCC unroll 5
  for (int j = 0; j < K; ++j) {
    const T* xj = x + ih0 * wk.xs.h + q * S + j - g.pad_l;
#pragma GCC unroll 21
    for (int u = 0; u < U; ++u) {
      if (u < ulo || u >= uhi) continue;
      const Vec<T> xv = simd::load_lanes<S, Masked>(xj + u * wk.xs.h, S, Masked ? mq[j] : 0);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const int i = u - r * S;  // the tap row that output row r reads from input row u
        if (i >= 0 && i < K) f(r, i, j, xv);
      }
    }
  }
}

template <typename T, int K, int S, int R, bool Masked>
inline void depthwise_tile(const Walk<T>& wk, const T* x, const T* w, T bias, int64_t oh0, int64_t q, T* y) {
  const ConvGeometry& g = wk.g;
  Vec<T> acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = Vec<T>::set1(bias);
  for_each_tile_tap<T, K, S, R, Masked>(wk, x, oh0, q, [&](int r, int i, int j, Vec<T> xv) __attribute__((always_inline)) {
    acc[r] = fma(Vec<T>::set1(w[i * K + j]), xv, acc[r]);
  });
  const Mask out = wk.run_mask(q);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (oh0 + r >= g.OH) break;
    T* d = y + (oh0 + r) * wk.ys.h + q;
    if (Masked) acc[r].store(d, out);
    else acc[r].store(d);
  }
}

template <typename T, int K, int S>
void depthwise_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys) {
  constexpr int V = Vec<T>::size, R = tile_vectors(1);
  const Walk<T> wk(g, xs, ys, /*allow_flat=*/false);
  parallel_for(0, g.N * g.C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / g.C, c = item % g.C;
      const T* xc = x + n * xs.n + c * xs.c;
      const T* wc = w + c * K * K;
      const T b = bias ? bias[c] : T(0);
      T* yc = y + n * ys.n + c * ys.c;
      for (int64_t oh0 = 0; oh0 < g.OH; oh0 += R)
        for (int64_t q = 0; q < wk.len; q += V) {
          if (wk.full[q / V]) depthwise_tile<T, K, S, R, false>(wk, xc, wc, b, oh0, q, yc);
          else depthwise_tile<T, K, S, R, true>(wk, xc, wc, b, oh0, q, yc);
        }
    }
  });
}

// --- depthwise, channels_last ---------------------------------------------------------------------------------

// A depthwise layer (one input and one output channel per group) on channels_last tensors: vectors run along C,
// where neighbouring lanes are neighbouring channels in memory. A pixel's tap is then one load whatever the stride,
// dilation or padding mode (the padding map moves the pixel, once for all its channels), and short rows waste no
// lanes. The kernel is read as a (tap, channel) table, transposed once per call (C * kh * kw elements).
inline bool along_c(const ConvGeometry& g, Strides4 xs, Strides4 ys) {
  return g.Cg() == 1 && g.Kg() == 1 && xs.c == 1 && ys.c == 1;
}

// The kernel columns the register-tiled loops below know at compile time: 3 or 5, unit column dilation, column
// stride 1 or 2. by_width_and_stride(g, f) is f(Constant<kw>, Constant<sw>) for such a layer, e.g. the instance of
// a kernel template to run.
inline bool along_c_tiled_columns(const ConvGeometry& g) {
  return g.dw == 1 && (g.kw == 3 || g.kw == 5) && (g.sw == 1 || g.sw == 2);
}
// The backward tiles also hold a K x K kernel's taps (rows, too) at compile time.
inline bool along_c_tiled_square(const ConvGeometry& g) { return along_c_tiled_columns(g) && g.kh == g.kw; }

template <typename F>
auto by_width_and_stride(const ConvGeometry& g, const F& f) {
  return g.kw == 3 ? (g.sw == 1 ? f(Constant<3>{}, Constant<1>{}) : f(Constant<3>{}, Constant<2>{}))
                   : (g.sw == 1 ? f(Constant<5>{}, Constant<1>{}) : f(Constant<5>{}, Constant<2>{}));
}

// One vector of channels from p: every lane, or (Masked, for a last, partial block of channels) the lanes of m.
template <bool Masked, typename T>
__attribute__((always_inline)) inline Vec<T> load_channels(const T* p, Mask m) {
  return Masked ? Vec<T>::load(p, m) : Vec<T>::load(p);
}
template <bool Masked, typename T>
__attribute__((always_inline)) inline void store_channels(Vec<T> v, T* p, Mask m) {
  Masked ? v.store(p, m) : v.store(p);
}

template <typename T>
void fill_taps_by_channel(const ConvGeometry& g, const T* w, T* table) {
  const int64_t taps = g.kh * g.kw;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t q = 0; q < taps; ++q) table[q * g.C + c] = w[c * taps + q];
}

// Output pixels [ow, ow + B) of one row, for the channels [c0, c0 + V), where every tap reads inside the input.
// rows[i]: input row of tap row i (-1: zero padding, skipped). With the kernel width K and column stride S known
// (K > 0, no column dilation), each of the (B - 1) * S + K input vectors under the block is loaded once and fed to
// every (pixel, tap column) pair that reads it: at 3x3 stride 1, 10 loads for 24 FMAs instead of 24. Otherwise each
// tap loads its own vector.
template <typename T, bool Masked, int K, int S, int B>
inline void along_c_block(const ConvGeometry& g, const T* xn, Strides4 xs, const T* table, Vec<T> init,
                          const int64_t* rows, int64_t c0, Mask m, int64_t ow, T* yr, Strides4 ys) {
  constexpr int U = (B - 1) * S + K;
  Vec<T> acc[B];
#pragma GCC unroll 8
  for (int b = 0; b < B; ++b) acc[b] = init;
  for (int64_t i = 0; i < g.kh; ++i) {
    if (rows[i] < 0) continue;
    const T* xr = xn + rows[i] * xs.h + (ow * g.sw - g.pad_l) * xs.w + c0;
    const T* wr = table + i * g.kw * g.C + c0;
    if constexpr (K > 0) {
      Vec<T> wv[K];
#pragma GCC unroll 8
      for (int j = 0; j < K; ++j) wv[j] = load_channels<Masked>(wr + j * g.C, m);
#pragma GCC unroll 32
      for (int u = 0; u < U; ++u) {
        const Vec<T> xv = load_channels<Masked>(xr + u * xs.w, m);
#pragma GCC unroll 8
        for (int j = 0; j < K; ++j)  // input column u is tap column j of pixel b = (u - j) / S
          if (u >= j && (u - j) % S == 0 && (u - j) / S < B) acc[(u - j) / S] = fma(wv[j], xv, acc[(u - j) / S]);
      }
    } else {
      for (int64_t j = 0; j < g.kw; ++j) {
        const Vec<T> wv = load_channels<Masked>(wr + j * g.C, m);
        const T* xj = xr + j * g.dw * xs.w;
#pragma GCC unroll 8
        for (int b = 0; b < B; ++b) acc[b] = fma(wv, load_channels<Masked>(xj + b * g.sw * xs.w, m), acc[b]);
      }
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < B; ++b) {
    T* d = yr + (ow + b) * ys.w + c0;
    store_channels<Masked>(acc[b], d, m);
  }
}

// One output row: the interior in blocks of 8 pixels, then 4 (7x7 and 14x14 planes have interiors of 5 and 12), then
// 1, and the edge pixels one at a time through the padding map.
template <typename T, bool Masked, int K, int S>
void along_c_forward_row(const ConvGeometry& g, const T* xn, Strides4 xs, const T* table, const T* bias,
                         const int64_t* rows, int64_t c0, T* yr, Strides4 ys) {
  constexpr int V = Vec<T>::size;
  const Mask m = lane_range(0, g.C - c0, V);
  const Vec<T> init = bias ? load_channels<Masked>(bias + c0, m) : Vec<T>::zero();
  int64_t lo = 0, hi = 0;
  interior_all_taps(g, lo, hi);
  auto edge = [&](int64_t ow) {
    Vec<T> acc = init;
    for (int64_t i = 0; i < g.kh; ++i) {
      if (rows[i] < 0) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = g.in_col(ow, j);
        if (iw < 0) continue;
        const Vec<T> wv = load_channels<Masked>(table + (i * g.kw + j) * g.C + c0, m);
        acc = fma(wv, load_channels<Masked>(xn + rows[i] * xs.h + iw * xs.w + c0, m), acc);
      }
    }
    T* d = yr + ow * ys.w + c0;
    store_channels<Masked>(acc, d, m);
  };
  int64_t ow = 0;
  for (; ow < lo; ++ow) edge(ow);
  for (; ow + 8 <= hi; ow += 8) along_c_block<T, Masked, K, S, 8>(g, xn, xs, table, init, rows, c0, m, ow, yr, ys);
  for (; ow + 4 <= hi; ow += 4) along_c_block<T, Masked, K, S, 4>(g, xn, xs, table, init, rows, c0, m, ow, yr, ys);
  for (; ow < hi; ++ow) along_c_block<T, Masked, K, S, 1>(g, xn, xs, table, init, rows, c0, m, ow, yr, ys);
  for (; ow < g.OW; ++ow) edge(ow);
}

template <typename T, int K, int S>
void along_c_forward_rows(const ConvGeometry& g, const T* x, Strides4 xs, const T* table, const T* bias, T* y,
                          Strides4 ys) {
  constexpr int V = Vec<T>::size;
  parallel_for(0, g.N * g.OH, 1, [&](int64_t begin, int64_t end) {
    Scratch<int64_t> rows(g.kh);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / g.OH, oh = item % g.OH;
      for (int64_t i = 0; i < g.kh; ++i) rows[i] = g.in_row(oh, i);
      const T* xn = x + n * xs.n;
      T* yr = y + n * ys.n + oh * ys.h;
      int64_t c0 = 0;
      for (; c0 + V <= g.C; c0 += V) along_c_forward_row<T, false, K, S>(g, xn, xs, table, bias, rows.p, c0, yr, ys);
      if (c0 < g.C) along_c_forward_row<T, true, K, S>(g, xn, xs, table, bias, rows.p, c0, yr, ys);
    }
  });
}

template <typename T>
void along_c_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys) {
  Scratch<T> table(g.kh * g.kw * g.C);
  fill_taps_by_channel(g, w, table.p);
  auto rows = &along_c_forward_rows<T, 0, 1>;
  if (along_c_tiled_columns(g))
    rows = by_width_and_stride(g, [](auto k, auto s) { return &along_c_forward_rows<T, k.value, s.value>; });
  rows(g, x, xs, table.p, bias, y, ys);
}

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

// The exact adjoint of along_c_forward. In zero padding, as a gather: gx[ih, iw] = sum of w[i, j] * gy[oh, ow] over
// the taps whose output (oh, ow) = ((ih + pad_t - i dh) / sh, (iw + pad_l - j dw) / sw) is whole and inside, so each
// gx vector is summed in a register (at stride 2 a quarter of the taps have one) and a thread owns rows of gx. The
// other modes fold several taps onto one input element, so they scatter through the padding map instead, a thread
// owning (image, channel block). Either way each gx element is summed in one fixed order. (Unit stride with zero
// padding does not come here: grad_input runs it as a forward over the flipped kernel.)
template <typename T>
void along_c_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs) {
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

// A K x K kernel at column stride S, unit column dilation (MobileNet's and EfficientNet's 3x3 and 5x5): all K * K
// taps of a channel block are register accumulators for the whole sum. Interior pixels go B at a time: their B gy
// vectors are loaded once, and each of the (B - 1) * S + K input vectors under them in a kernel row once, feeding
// every (pixel, tap column) pair that reads it (at 3x3 stride 1, B = 8: 38 loads for 72 FMAs). Rows come through
// in_row and edge pixels through in_col, so every padding mode is exact. A thread owns channel blocks, so each sum
// runs in one fixed order.
template <typename T, bool Masked, int K, int S>
void along_c_grad_weight_block(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, int64_t c0,
                               T* gw) {
  constexpr int V = Vec<T>::size, Free = 2 * simd::kAccumulators - K * K - 1;
  constexpr int B = Free >= 8 ? 8 : Free >= 4 ? 4 : Free >= 2 ? 2 : 1;  // gy vectors in registers with the taps
  const Mask m = lane_range(0, g.C - c0, V);
  int64_t lo = 0, hi = 0;
  interior_all_taps(g, lo, hi);
  Vec<T> acc[K * K];
#pragma GCC unroll 25
  for (int t = 0; t < K * K; ++t) acc[t] = Vec<T>::zero();
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const T* xr[K];  // input row of each kernel row, at column 0, or null in zero padding
#pragma GCC unroll 5
      for (int i = 0; i < K; ++i) {
        const int64_t ih = g.in_row(oh, i);
        xr[i] = ih < 0 ? nullptr : x + n * xs.n + ih * xs.h + c0;
      }
      const T* gyr = gy + n * gys.n + oh * gys.h + c0;
      auto edge = [&](int64_t ow) __attribute__((always_inline)) {
        const Vec<T> gv = load_channels<Masked>(gyr + ow * gys.w, m);
#pragma GCC unroll 5
        for (int i = 0; i < K; ++i) {
          if (!xr[i]) continue;
#pragma GCC unroll 5
          for (int j = 0; j < K; ++j) {
            const int64_t iw = g.in_col(ow, j);
            if (iw >= 0) acc[i * K + j] = fma(gv, load_channels<Masked>(xr[i] + iw * xs.w, m), acc[i * K + j]);
          }
        }
      };
      int64_t ow = 0;
      for (; ow < lo; ++ow) edge(ow);
      for (; ow + B <= hi; ow += B) {
        constexpr int U = (B - 1) * S + K;
        Vec<T> gv[B];
#pragma GCC unroll 8
        for (int b = 0; b < B; ++b) gv[b] = load_channels<Masked>(gyr + (ow + b) * gys.w, m);
#pragma GCC unroll 5
        for (int i = 0; i < K; ++i) {
          if (!xr[i]) continue;
          const T* xu = xr[i] + (ow * S - g.pad_l) * xs.w;
#pragma GCC unroll 40
          for (int u = 0; u < U; ++u) {
            const Vec<T> xv = load_channels<Masked>(xu + u * xs.w, m);
#pragma GCC unroll 5
            for (int j = 0; j < K; ++j)  // input column u is tap column j of pixel b = (u - j) / S
              if (u >= j && (u - j) % S == 0 && (u - j) / S < B)
                acc[i * K + j] = fma(gv[(u - j) / S], xv, acc[i * K + j]);
          }
        }
      }
      for (; ow < g.OW; ++ow) edge(ow);
    }
  T lanes[K * K][V];
#pragma GCC unroll 25
  for (int t = 0; t < K * K; ++t) acc[t].store(lanes[t]);
  for (int64_t l = 0; l < V && c0 + l < g.C; ++l)
    for (int t = 0; t < K * K; ++t) gw[(c0 + l) * K * K + t] = lanes[t][l];
}

template <typename T, int K, int S>
void along_c_grad_weight_square(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
  constexpr int V = Vec<T>::size;
  parallel_for(0, (g.C + V - 1) / V, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c0 = begin * V; c0 < end * V; c0 += V) {
      if (c0 + V <= g.C) along_c_grad_weight_block<T, false, K, S>(g, x, xs, gy, gys, c0, gw);
      else along_c_grad_weight_block<T, true, K, S>(g, x, xs, gy, gys, c0, gw);
    }
  });
}

// Any other kernel: gw[c, tap] = sum over images and pixels of gy * x at the tap, J taps of a channel block at a
// time as register accumulators. A thread owns channel blocks, so each sum runs in one fixed order.
template <typename T>
void along_c_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
  if (along_c_tiled_square(g))
    return by_width_and_stride(g, [](auto k, auto s) { return &along_c_grad_weight_square<T, k.value, s.value>; })(
        g, x, xs, gy, gys, gw);
  constexpr int V = Vec<T>::size, J = 9;
  const int64_t blocks = (g.C + V - 1) / V, taps = g.kh * g.kw;
  int64_t lo = 0, hi = 0;
  interior_all_taps(g, lo, hi);
  parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t c0 = item * V;
      const Mask m = lane_range(0, g.C - c0, V);
      for (int64_t t0 = 0; t0 < taps; t0 += J) {
        const int64_t nt = taps - t0 < J ? taps - t0 : J;
        int64_t ti[J], tj[J];
        for (int s = 0; s < J; ++s) ti[s] = (t0 + s) / g.kw, tj[s] = (t0 + s) % g.kw;
        Vec<T> acc[J];
        for (int s = 0; s < J; ++s) acc[s] = Vec<T>::zero();
        for (int64_t n = 0; n < g.N; ++n)
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            // Each slot's input offset in this row, and whether its row is inside (slot s < nt).
            int64_t off[J];
            bool live[J];
            for (int s = 0; s < J; ++s) {
              const int64_t ih = s < nt ? g.in_row(oh, ti[s]) : -1;
              live[s] = ih >= 0;
              off[s] = n * xs.n + ih * xs.h + (tj[s] * g.dw - g.pad_l) * xs.w + c0;
            }
            const T* gyr = gy + n * gys.n + oh * gys.h + c0;
            for (int64_t ow = 0; ow < g.OW; ++ow) {
              const Vec<T> gv = Vec<T>::load(gyr + ow * gys.w, m);
              if (ow >= lo && ow < hi) {
#pragma GCC unroll 9
                for (int s = 0; s < J; ++s)
                  if (live[s]) acc[s] = fma(gv, Vec<T>::load(x + off[s] + ow * g.sw * xs.w, m), acc[s]);
              } else {
#pragma GCC unroll 9
                for (int s = 0; s < J; ++s) {
                  const int64_t iw = live[s] ? g.in_col(ow, tj[s]) : -1;
                  if (iw < 0) continue;
                  const T* p = x + off[s] + (iw - (tj[s] * g.dw - g.pad_l)) * xs.w;
                  acc[s] = fma(gv, Vec<T>::load(p, m), acc[s]);
                }
              }
            }
          }
        for (int64_t s = 0; s < nt; ++s) {
          T lanes[V];
          acc[s].store(lanes);
          for (int64_t l = 0; l < V && c0 + l < g.C; ++l) gw[(c0 + l) * taps + t0 + s] = lanes[l];
        }
      }
    }
  });
}

// Whether the depthwise kernels run this call: the geometry (direct.h) and rows contiguous in both tensors.
inline bool depthwise_fast_path(const ConvGeometry& g, Strides4 xs, Strides4 ys) {
  return depthwise_fast_path_geometry(g) && xs.w == 1 && ys.w == 1;
}

template <typename T>
void forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys) {
  if (along_c(g, xs, ys)) return along_c_forward(g, x, xs, w, bias, y, ys);
  if (depthwise_fast_path(g, xs, ys)) {
    const auto f = g.kh == 3 ? (g.sh == 1 ? &depthwise_forward<T, 3, 1> : &depthwise_forward<T, 3, 2>)
                             : (g.sh == 1 ? &depthwise_forward<T, 5, 1> : &depthwise_forward<T, 5, 2>);
    return f(g, x, xs, w, bias, y, ys);
  }
  with_channel_block<Forward, T>(g.Kg(), g, x, xs, w, bias, y, ys);
}

// --- grad_input -----------------------------------------------------------------------------------------------

// The exact adjoint of Forward, as a scatter: gx[c, tap at q] += sum over k of w[k, c, tap] * gy[k, q]. A thread
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

// Depthwise K x K, stride 2, zero padding: the gather form of the adjoint, one register per gx vector. gx[ih, iw]
// sums w[i, j] * gy[oh, ow] over the taps with 2 oh + i = ih + pad_t and 2 ow + j = iw + pad_l: along a row, every
// other lane has a gy element for a given j, so the tap reads gy "zero-stuffed", 8 elements spread to alternate
// lanes by an expanding load. A tile of R gx rows starts where ih + pad_t is even, so which gy row feeds which
// (gx row, tap row) is known at compile time, as in depthwise_tile; each loaded gy vector feeds every pair.
template <typename T, int K, int R>
inline void depthwise_grad_input_tile(const ConvGeometry& g, int64_t gy_row, int64_t gx_row, const T* gy,
                                      const T* w, int64_t ih0, int64_t q, T* gx) {
  constexpr int V = Vec<T>::size, VMIN = -(K - 1) / 2, VMAX = (R - 1) / 2;
  const Mask all = lane_range(0, V, V), even = Mask(0x55555555) & all;
  const int64_t ohb = (ih0 + g.pad_t) / 2;  // gy row v = 0 of the tile; gx row r reads gy row ohb + v at i = r - 2v
  Vec<T> acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = Vec<T>::zero();
#pragma GCC unroll 5
  for (int j = 0; j < K; ++j) {
    const int64_t m0 = q + g.pad_l - j;  // lane l reads gy column (m0 + l) / 2 where m0 + l is even
    const int64_t lo = m0 < 0 ? -m0 : 0, hi = 2 * g.OW - m0 < g.W - q ? 2 * g.OW - m0 : g.W - q;
    const Mask m = lane_range(lo, hi, V) & (m0 & 1 ? all & ~even : even);
    if (!m) continue;
    const T* gyj = gy + (m0 + __builtin_ctz(m)) / 2;
#pragma GCC unroll 8
    for (int v = VMIN; v <= VMAX; ++v) {
      const int64_t oh = ohb + v;
      if (oh < 0 || oh >= g.OH) continue;
      const Vec<T> zv = Vec<T>::expand(gyj + oh * gy_row, m);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const int i = r - 2 * v;
        if (i >= 0 && i < K) acc[r] = fma(Vec<T>::set1(w[i * K + j]), zv, acc[r]);
      }
    }
  }
  const Mask out = lane_range(0, g.W - q, V);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const int64_t ih = ih0 + r;
    if (ih < 0 || ih >= g.H) continue;
    if (out == all) acc[r].store(gx + ih * gx_row + q);
    else acc[r].store(gx + ih * gx_row + q, out);
  }
}

template <typename T, int K>
void depthwise_grad_input_s2(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs) {
  constexpr int V = Vec<T>::size, R = tile_vectors(1) / 2 * 2;  // even, so every tile starts on the same parity
  parallel_for(0, g.N * g.C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / g.C, c = item % g.C;
      const T* gyc = gy + n * gys.n + c * gys.c;
      T* gxc = gx + n * gxs.n + c * gxs.c;
      for (int64_t ih0 = -(g.pad_t & 1); ih0 < g.H; ih0 += R)
        for (int64_t q = 0; q < g.W; q += V)
          depthwise_grad_input_tile<T, K, R>(g, gys.h, gxs.h, gyc, w + c * K * K, ih0, q, gxc);
    }
  });
}

template <typename T>
void grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs) {
  if (depthwise_fast_path(g, gxs, gys) && g.sh == 2)
    return g.kh == 3 ? depthwise_grad_input_s2<T, 3>(g, gy, gys, w, gx, gxs)
                     : depthwise_grad_input_s2<T, 5>(g, gy, gys, w, gx, gxs);
  if (along_c(g, gxs, gys) && !grad_input_is_forward(g)) return along_c_grad_input(g, gy, gys, w, gx, gxs);
  if (grad_input_is_forward(g)) {
    const int64_t ekh = (g.kh - 1) * g.dh, ekw = (g.kw - 1) * g.dw;
    // With zero padding and unit stride the adjoint is itself a grouped convolution: gy correlated with the kernel
    // flipped and transposed within each group, padded by (extent - pad). The gather form keeps each sum in a
    // register, where the scatter reads and writes gx once per tap.
    ConvGeometry t = g;
    t.C = g.K, t.K = g.C, t.H = g.OH, t.W = g.OW, t.OH = g.H, t.OW = g.W;
    t.pad_t = ekh - g.pad_t, t.pad_b = ekh - g.pad_b, t.pad_l = ekw - g.pad_l, t.pad_r = ekw - g.pad_r;
    const int64_t taps = g.kh * g.kw, Cg = g.Cg(), Kg = g.Kg();
    Scratch<T> wt(g.K * Cg * taps);  // (C, K / groups, kh, kw)
    // Threaded, in blocks of 16 input channels: per k, one read of 16 * taps neighbouring weights, where a plain
    // k, c loop jumps Cg * taps elements per read (the 512-channel 3x3 weight is 9.4 MB).
    constexpr int64_t CB = 16;
    const int64_t cblocks = (Cg + CB - 1) / CB;
    parallel_for(0, g.groups * cblocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t grp = item / cblocks, c0 = item % cblocks * CB, c1 = c0 + CB < Cg ? c0 + CB : Cg;
        for (int64_t k = 0; k < Kg; ++k)
          for (int64_t c = c0; c < c1; ++c)
            for (int64_t q = 0; q < taps; ++q)
              wt[((grp * Cg + c) * Kg + k) * taps + q] = w[((grp * Kg + k) * Cg + c) * taps + taps - 1 - q];
      }
    });
    forward<T>(t, gy, gys, wt.p, nullptr, gx, gxs);
    return;
  }
  with_channel_block<GradInputScatter, T>(g.Kg(), g, gy, gys, w, gx, gxs);
}

// --- grad_weight ----------------------------------------------------------------------------------------------

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

// --- grad_weight with input channels along the vector ----------------------------------------------------------

// Where a group's input channels fill whole vectors (ResNeXt's 512@14 and 1024@7 stages have Cg = 16 and 32; dense
// layers) and the kernel is 3x3: gw[k, c0 .. c0 + V, i, j] = sum over positions q of gy[k, q], one element
// broadcast, times x[c0 .. c0 + V, tap (i, j) at q], one vector. This is a GEMM micro-kernel's outer-product
// update, with no horizontal sums and no lane masks, where GradWeight's walk masks every vector of a padded 14x14
// plane and ends each block in horizontal sums. Per channel block and image, x is first packed into a per-thread
// padded plane of V channels per pixel, through the padding map (so every mode is exact and the loop has no edges),
// 64-byte aligned so no load straddles two cache lines. K2 output channels at a time: 9 * K2 accumulators, then 9
// vector loads and K2 broadcasts a position.
template <typename T, int K2>
void grad_weight_by_channel_block(const ConvGeometry& g, const T* xt, int64_t Wp, const T* gyk, Strides4 gys,
                                  T* acc_mem) {
  constexpr int V = Vec<T>::size;
  const int64_t row_step = g.dh * Wp * V, col_step = g.dw * V;
  Vec<T> acc[K2 * 9];
#pragma GCC unroll 27
  for (int a = 0; a < K2 * 9; ++a) acc[a] = Vec<T>::load(acc_mem + a * V);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const T* gr = gyk + oh * gys.h;
    const T* xr = xt + oh * g.sh * Wp * V;  // tap (0, 0) of output row oh
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      Vec<T> gb[K2];
#pragma GCC unroll 3
      for (int kk = 0; kk < K2; ++kk) gb[kk] = Vec<T>::set1(gr[kk * gys.c + ow * gys.w]);
      const T* xq = xr + ow * g.sw * V;
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) {
          const Vec<T> xv = Vec<T>::load(xq + i * row_step + j * col_step);
#pragma GCC unroll 3
          for (int kk = 0; kk < K2; ++kk) acc[kk * 9 + i * 3 + j] = fma(gb[kk], xv, acc[kk * 9 + i * 3 + j]);
        }
    }
  }
#pragma GCC unroll 27
  for (int a = 0; a < K2 * 9; ++a) acc[a].store(acc_mem + a * V);
}

// V channel planes of x (from channel 0 of xc) into xt, (H + pad_t + pad_b) x (W + pad_l + pad_r) pixels of V
// channels, through the padding map.
template <typename T>
void pack_padded_channel_block(const ConvGeometry& g, const T* xc, Strides4 xs, T* xt) {
  constexpr int V = Vec<T>::size;
  const int64_t Hp = g.H + g.pad_t + g.pad_b, Wp = g.W + g.pad_l + g.pad_r, sc = xs.c;
  for (int64_t hp = 0; hp < Hp; ++hp) {
    const int64_t ih = map_index(hp - g.pad_t, g.H, g.mode);
    for (int64_t wp = 0; wp < Wp; ++wp) {
      const int64_t iw = ih < 0 ? -1 : map_index(wp - g.pad_l, g.W, g.mode);
      T* __restrict__ d = xt + (hp * Wp + wp) * V;
      if (iw < 0) {
        for (int c = 0; c < V; ++c) d[c] = T(0);
        continue;
      }
      const T* __restrict__ src = xc + ih * xs.h + iw * xs.w;
#pragma GCC unroll 16
      for (int c = 0; c < V; ++c) d[c] = src[c * sc];
    }
  }
}

// A thread owns (group, block of V input channels), and so gw[., c0 .. c0 + V, ., .] of its group: each sum runs in
// one fixed order. Scratch per thread: the packed plane and the (output channel, tap) accumulators, both V wide.
template <typename T>
void grad_weight_by_channel(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
  constexpr int V = Vec<T>::size, K2 = simd::kAccumulators >= 16 ? 2 : 1;  // 18 accumulators need 32 registers
  const int64_t Cg = g.Cg(), Kg = g.Kg(), cblocks = Cg / V, Wp = g.W + g.pad_l + g.pad_r;
  parallel_for(0, g.groups * cblocks, 1, [&](int64_t begin, int64_t end) {
    Scratch<T> xt((g.H + g.pad_t + g.pad_b) * Wp * V), acc(Kg * 9 * V);  // acc: (k, tap, lane)
    for (int64_t item = begin; item < end; ++item) {
      const int64_t grp = item / cblocks, c0 = item % cblocks * V;
      for (int64_t a = 0; a < Kg * 9 * V; ++a) acc[a] = T(0);
      for (int64_t n = 0; n < g.N; ++n) {
        pack_padded_channel_block(g, x + n * xs.n + (grp * Cg + c0) * xs.c, xs, xt.p);
        const T* gyg = gy + n * gys.n + grp * Kg * gys.c;
        int64_t k = 0;
        for (; k + K2 <= Kg; k += K2)
          grad_weight_by_channel_block<T, K2>(g, xt.p, Wp, gyg + k * gys.c, gys, acc.p + k * 9 * V);
        for (; k < Kg; ++k) grad_weight_by_channel_block<T, 1>(g, xt.p, Wp, gyg + k * gys.c, gys, acc.p + k * 9 * V);
      }
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t c = 0; c < V; ++c)
          for (int64_t t = 0; t < 9; ++t) gw[((grp * Kg + k) * Cg + c0 + c) * 9 + t] = acc[(k * 9 + t) * V + c];
    }
  });
}

// Depthwise K x K, stride S (1, 2), zero padding: gw[c, i, j] = sum of gy[oh, ow] * x[S oh + i - pad_t,
// S ow + j - pad_l]. All K * K taps of a channel are vector accumulators at once; a tile of R gy rows is loaded,
// then each input row under it is loaded once per kernel column and feeds every (gy row, tap row) pair that reads
// it, as in depthwise_tile (for_each_tile_tap). A thread owns whole channels, so each sum has one order (bitwise reproducible).
template <typename T, int K, int S, int R, bool Masked>
inline void depthwise_grad_weight_tile(const Walk<T>& wk, const T* x, const T* gy, int64_t oh0, int64_t q,
                                       Vec<T> (&acc)[K * K]) {
  const Mask out = wk.run_mask(q);
  Vec<T> gv[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const T* p = gy + (oh0 + r) * wk.ys.h + q;
    gv[r] = oh0 + r >= wk.g.OH ? Vec<T>::zero() : Masked ? Vec<T>::load(p, out) : Vec<T>::load(p);
  }
  for_each_tile_tap<T, K, S, R, Masked>(wk, x, oh0, q, [&](int r, int i, int j, Vec<T> xv) __attribute__((always_inline)) {
    acc[i * K + j] = fma(gv[r], xv, acc[i * K + j]);
  });
}

template <typename T, int K, int S>
void depthwise_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
  constexpr int V = Vec<T>::size, R = K == 3 ? tile_vectors(1) : tile_vectors(1) / 2;  // K * K + R + 1 registers
  const Walk<T> wk(g, xs, gys, /*allow_flat=*/false);
  parallel_for(0, g.C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      Vec<T> acc[K * K];
      for (int t = 0; t < K * K; ++t) acc[t] = Vec<T>::zero();
      for (int64_t n = 0; n < g.N; ++n) {
        const T* xc = x + n * xs.n + c * xs.c;
        const T* gyc = gy + n * gys.n + c * gys.c;
        for (int64_t oh0 = 0; oh0 < g.OH; oh0 += R)
          for (int64_t q = 0; q < wk.len; q += V) {
            if (wk.full[q / V]) depthwise_grad_weight_tile<T, K, S, R, false>(wk, xc, gyc, oh0, q, acc);
            else depthwise_grad_weight_tile<T, K, S, R, true>(wk, xc, gyc, oh0, q, acc);
          }
      }
      for (int t = 0; t < K * K; ++t) gw[c * K * K + t] = acc[t].sum();
    }
  });
}

template <typename T>
void grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw) {
  if (along_c(g, xs, gys)) return along_c_grad_weight(g, x, xs, gy, gys, gw);
  if (depthwise_fast_path(g, xs, gys)) {
    const auto f = g.kh == 3 ? (g.sh == 1 ? &depthwise_grad_weight<T, 3, 1> : &depthwise_grad_weight<T, 3, 2>)
                             : (g.sh == 1 ? &depthwise_grad_weight<T, 5, 1> : &depthwise_grad_weight<T, 5, 2>);
    return f(g, x, xs, gy, gys, gw);
  }
  if (grad_weight_by_channel_applies(g, sizeof(T))) return grad_weight_by_channel(g, x, xs, gy, gys, gw);
  with_channel_block<GradWeight, T>(g.Kg(), g, x, xs, gy, gys, gw);
}

// Each thread runs independent chains of FMAs (12: more than the FMA latency times the issue width), so the loop
// is bound by FMA throughput alone; the slowest thread's time gives the rate.
double fma_peak_gflops(int threads) {
  constexpr int kChains = 12;
  constexpr int64_t kIters = 20'000'000 / Vec<float>::size;
  double slowest = 0, sink = 0;
  for (int rep = 0; rep < 3; ++rep) {  // the best of 3, as a peak should be
    double seconds[64] = {};
    float sums[64] = {};
    const int n = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        timespec start, stop;  // not std::chrono: its templates would be instantiated here with this file's ISA
        clock_gettime(CLOCK_MONOTONIC, &start);
        Vec<float> acc[kChains];
        for (int c = 0; c < kChains; ++c) acc[c] = Vec<float>::set1(float(c) * 1e-3f + float(t));
        const Vec<float> m = Vec<float>::set1(0.9999f), a = Vec<float>::set1(1e-4f);
        for (int64_t i = 0; i < kIters; ++i)
#pragma GCC unroll 12
          for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], m, a);
        Vec<float> s = acc[0];
        for (int c = 1; c < kChains; ++c) s = s + acc[c];
        sums[t] = s.sum();
        clock_gettime(CLOCK_MONOTONIC, &stop);
        seconds[t] = double(stop.tv_sec - start.tv_sec) + 1e-9 * double(stop.tv_nsec - start.tv_nsec);
      }
    });
    double worst = 0;
    for (int t = 0; t < n; ++t) worst = seconds[t] > worst ? seconds[t] : worst, sink += sums[t];
    const double gflops = 2.0 * kChains * Vec<float>::size * kIters * n / worst / 1e9;
    slowest = gflops > slowest ? gflops : slowest;
  }
  return sink == -1.0 ? 0 : slowest;  // sink keeps the loop's result alive
}

}  // namespace

extern const DirectTable direct_table;
const DirectTable direct_table = {
    {&forward<float>, &grad_input<float>, &grad_weight<float>},
    {&forward<double>, &grad_input<double>, &grad_weight<double>},
    &fma_peak_gflops,
};

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
