// What the direct kernels share, compiled into each of their files once per ISA: TC_CPU_CAPABILITY names the
// inline namespace (cpu_default, cpu_avx2, cpu_avx512). No std:: container or algorithm is used here or in the
// kernel files: a std:: template instance built for a wider ISA could be shared with (and picked by the linker for)
// the baseline code; everything here lives in the ISA's own namespace instead.
//
// How the kernels see a convolution. Output positions are walked in runs that are contiguous in the output plane:
// one output row each, or, for stride 1 on planes narrower than two vectors (the 7x7 and 14x14 layers), the whole
// plane as one flat run, so a vector is not wasted on a short row. A tap (i, j) of the kernel reads the input at a
// fixed offset from each run position, and a lane mask says which positions read inside the input. The vector
// pass is therefore exactly the zero-padded convolution, with masked loads at the edges and no padded copy; for the
// other padding modes a scalar pass then adds the taps that fell in the padding, read through the padding map, at
#pragma once

#include <time.h>

#include <cstdlib>
#include <new>

#include "common/geometry.h"
#include "cpu/isa/simd.h"
#include "cpu/kernels.h"
#include "cpu/runtime.h"

#ifndef TC_CPU_CAPABILITY
#error "compile the direct kernels with -DTC_CPU_CAPABILITY=cpu_<isa>"
#endif

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {


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
Arena& thread_arena();  // this thread's (direct/table.cpp)

// This ISA's kernel entries (cpu/kernels.h), each defined in its own file.
TORCHCONV_DIRECT_KERNELS(TORCHCONV_DECLARE_KERNEL)

// The implicit GEMM forward (igemm_any_forward.cpp), its weights read as they lie or, flipped_weights, as the
// kernel of `g` flipped and transposed within each group: the weights of the layer whose grad_input `g` computes
// (flip_grad_input.cpp), packed straight from them with no flipped copy.
template <typename T>
void igemm_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, bool flipped_weights, const T* bias,
                   T* y, Strides4 ys);

// An array from this thread's arena (or, while the arena is too small, the heap), 64-byte aligned so a vector of a
// packed buffer never straddles two cache lines (two loads on Zen 4). Scratch objects live in scopes, so they are
// released in the reverse order of their making. Not std::vector: see the top of the file.
template <typename T>
struct Scratch {
  T* p;
  int64_t bytes;
  bool heap = false;
  explicit Scratch(int64_t n) : bytes((int64_t(sizeof(T)) * (n > 0 ? n : 1) + 63) / 64 * 64) {
    Arena& a = thread_arena();
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
    else thread_arena().top -= bytes;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T& operator[](int64_t i) const { return p[i]; }
};

// A compile-time value (a bool or an int) as an argument, to instantiate a generic lambda per case (not

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
    g.interior_cols_all_taps(lo_all, hi_all);
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

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
