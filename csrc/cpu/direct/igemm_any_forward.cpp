// Dense forward as an implicit GEMM (BLIS's loop nest: Van Zee & van de Geijn 2015, with the im2col gather fused
// into the packing of B, as in Zhang, Franchetti & Low 2018): the weights packed per call into panels of MR output
// channels, the input gathered a tile of NR output pixels at a time straight from the tensor (any strides, every
// padding mode through the padding map), and a register tile of 2 vectors of channels x NR pixels, where each
// loaded weight vector feeds NR FMAs and each broadcast pixel 2.
#include "cpu/direct/common.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace {

template <typename T>
struct Igemm {
  static constexpr int V = Vec<T>::size;
  static constexpr int MR = 2 * V;                    // output channels of a register tile: 2 vectors
  static constexpr int NR = simd::kAccumulators - 2;  // pixels: 2 x NR accumulators, 2 weights, 1 broadcast
  static constexpr int NB = (NR + V - 1) / V * V;     // B's row stride: whole vectors
  static constexpr int64_t KC = 16384 / (MR * sizeof(T));  // reduction rows per chunk: an A panel is 16 KiB (L1)
  static constexpr int64_t kBlockBytes = int64_t(128) << 10;  // the B panels of a block of tiles (L2)
  static constexpr int NT = kBlockBytes / (KC * NB * sizeof(T)) > 0 ? kBlockBytes / (KC * NB * sizeof(T)) : 1;

  const ConvGeometry& g;
  Strides4 xs, ys;
  int64_t Cg, Kg, R, taps, P, kblocks, tiles, blocks;  // blocks: of at most NT tiles, as even as they come
  // Within a group's block of weights, output channel o, input channel i, tap t is at o * wo + i * wi + t, or,
  // flipped, at o * wo + i * wi + taps - 1 - t.
  int64_t wo, wi;
  bool flip;
  // Channels_last input of a vector of channels or more, whose tiles are always gathered: the reduction runs tap
  // by tap (row r = tap * Cg + input channel) and B is stored a pixel's column at a time (KC apart), so each
  // (pixel, tap) copies its run of channels as vectors, where a channel-major row would take them lane by lane.
  bool tap_major;

  Igemm(const ConvGeometry& geom, Strides4 x_strides, Strides4 y_strides, bool flipped_weights)
      : g(geom), xs(x_strides), ys(y_strides), Cg(g.Cg()), Kg(g.Kg()), R(g.Cg() * g.kh * g.kw), taps(g.kh * g.kw),
        P(g.OH * g.OW), kblocks((g.Kg() + MR - 1) / MR), tiles((g.OH * g.OW + NR - 1) / NR),
        blocks((tiles + NT - 1) / NT), wo(flipped_weights ? taps : R), wi(flipped_weights ? Kg * taps : taps),
        flip(flipped_weights), tap_major(xs.c == 1 && g.sw * xs.w > 2 && Cg >= V) {}

  // Items that use each weight panel: one per image and block of pixels.
  int64_t panel_uses() const { return g.N * blocks; }

  // Rows [r0, r1) of weight panel (grp, kb): a[r - r0][m] = the weight of output channel kb * MR + m of group grp
  // at reduction row r (input channel r / taps and tap r % taps, or tap_major, r % Cg and r / Cg), zero past the
  // group's channels. Written in order, read as MR streams (one per channel).
  void pack_panel(const T* w, int64_t grp, int64_t kb, int64_t r0, int64_t r1, T* a) const {
    const int64_t k0 = kb * MR, nk = Kg - k0 < MR ? Kg - k0 : MR;
    const T* wk = w + grp * Kg * R + k0 * wo;
    // Input channel i and tap t of row r, advanced row by row (no division per row): the faster-moving of the two
    // is the tap, or, tap_major, the channel.
    const int64_t n_inner = tap_major ? Cg : taps;
    int64_t i = 0, t = 0;
    int64_t& inner = tap_major ? i : t;
    int64_t& outer = tap_major ? t : i;
    inner = r0 % n_inner, outer = r0 / n_inner;
    for (int64_t r = r0; r < r1; ++r, a += MR) {
      const T* src = wk + i * wi + (flip ? taps - 1 - t : t);
      for (int64_t m = 0; m < nk; ++m) a[m] = src[m * wo];
      for (int64_t m = nk; m < MR; ++m) a[m] = T(0);
      if (++inner == n_inner) inner = 0, ++outer;
    }
  }

  // Every panel, whole: A[grp][kb][r][m].
  void pack_weights(const T* w, T* A) const {
    parallel_for(0, g.groups * kblocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item)
        pack_panel(w, item / kblocks, item % kblocks, 0, R, A + item * R * MR);
    });
  }

  // The pixels of tile `tile` as runs along output rows: run s covers tile columns [q0, q0 + len) at (oh, ow0).
  struct Run {
    int64_t q0, len, oh, ow0;
  };
  int tile_runs(int64_t tile, Run* runs) const {
    int n = 0;
    const int64_t p0 = tile * NR, p1 = p0 + NR < P ? p0 + NR : P;
    for (int64_t p = p0; p < p1;) {
      const int64_t oh = p / g.OW, ow = p - oh * g.OW, len = g.OW - ow < p1 - p ? g.OW - ow : p1 - p;
      runs[n++] = {p - p0, len, oh, ow};
      p += len;
    }
    return n;
  }

  // A tile as the packing and the store see it: its pixels, where each writes its output, and how it packs.
  struct Tile {
    int64_t used;      // pixels (NR but for the last tile)
    int step;          // 1 or 2: one run of input columns that far apart, every tap inside: packed as vectors;
                       // 0: gathered through the map
    int64_t yoff[NR];  // each pixel's output offset
  };

  // Where each tap of each pixel of a tile reads within a channel, through the padding map: ot[tap * NR + q], or
  // -1 for a zero (the zero padding, or past the image's pixels); for a tile packed as vectors, ot[tap * NR] only.
  Tile map_tile(int64_t tile, int64_t* ot) const {
    Run runs[NR];
    const int nruns = tile_runs(tile, runs);
    Tile u{runs[nruns - 1].q0 + runs[nruns - 1].len, 0, {}};
    for (int s = 0; s < nruns; ++s)
      for (int64_t q = 0; q < runs[s].len; ++q) u.yoff[runs[s].q0 + q] = runs[s].oh * ys.h + (runs[s].ow0 + q) * ys.w;
    // One run whose every tap is inside, at input column step 1 or 2: packed as vectors, which read only the
    // first pixel's offset of each tap.
    const Run& f = runs[0];
    const int64_t ih0 = f.oh * g.sh - g.pad_t, iw0 = f.ow0 * g.sw - g.pad_l, colstep = g.sw * xs.w;
    if (nruns == 1 && (colstep == 1 || colstep == 2) && ih0 >= 0 && ih0 + (g.kh - 1) * g.dh < g.H && iw0 >= 0 &&
        iw0 + (f.len - 1) * g.sw + (g.kw - 1) * g.dw < g.W) {
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) ot[(i * g.kw + j) * NR] = (ih0 + i * g.dh) * xs.h + (iw0 + j * g.dw) * xs.w;
      u.step = int(colstep);
      return u;
    }
    for (int64_t k = 0; k < taps * NR; ++k) ot[k] = -1;
    for (int s = 0; s < nruns; ++s)
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t mh = map_index(runs[s].oh * g.sh - g.pad_t + i * g.dh, g.H, g.mode);
        if (mh < 0) continue;
        for (int64_t q = 0; q < runs[s].len; ++q)
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t mw = map_index((runs[s].ow0 + q) * g.sw - g.pad_l + j * g.dw, g.W, g.mode);
            if (mw >= 0) ot[(i * g.kw + j) * NR + runs[s].q0 + q] = mh * xs.h + mw * xs.w;
          }
      }
    return u;
  }

  // B[r - r0][q] for reduction rows [r0, r1) of one tile, through its map. Rows are NB apart, so a row is whole
  // vectors and is stored without a mask (AVX2's vmaskmovps store is microcoded on Zen 2 and 3: Agner Fog's
  // instruction tables, https://www.agner.org/optimize/instruction_tables.pdf).
  void pack_tile(const T* x, const int64_t* ot, const Tile& u, int64_t r0, int64_t r1, T* B) const {
    int64_t t = r0 % taps;  // advanced row by row: no division per row
    const T* xc = x + r0 / taps * xs.c;
    if (u.step) {
      Mask m[NB / V];
#pragma GCC unroll 4
      for (int v = 0; v < NB / V; ++v) m[v] = lane_range(0, u.used - v * V, V);
      for (int64_t r = r0; r < r1; ++r) {
        T* b = B + (r - r0) * NB;
        const T* src = xc + ot[t * NR];
        if (u.step == 1)
#pragma GCC unroll 4
          for (int v = 0; v < NB / V; ++v) Vec<T>::load(src + v * V, m[v]).store(b + v * V);
        else
#pragma GCC unroll 4
          for (int v = 0; v < NB / V; ++v) Vec<T>::load_even(src + 2 * v * V, m[v]).store(b + v * V);
        if (++t == taps) t = 0, xc += xs.c;
      }
      return;
    }
    if (tap_major) {
      // B[q * KC + r - r0]: pixel q's column, each tap's run of the chunk's channels copied as vectors, in
      // increasing addresses, so a vector stored whole past a run's end lands where a later one is written (B has
      // a vector to spare at its end).
      for (int q = 0; q < NR; ++q)
        for (int64_t tap = r0 / Cg; tap * Cg < r1; ++tap) {
          const int64_t c0 = r0 > tap * Cg ? r0 - tap * Cg : 0, c1 = r1 - tap * Cg < Cg ? r1 - tap * Cg : Cg;
          T* b = B + q * KC + tap * Cg + c0 - r0;
          const int64_t o = ot[tap * NR + q];
          for (int64_t c = c0; c < c1; c += V)
            (o < 0 ? Vec<T>::zero() : Vec<T>::load(x + o + c, lane_range(0, c1 - c, V))).store(b + c - c0);
        }
      return;
    }
    for (int64_t r = r0; r < r1; ++r) {
      T* b = B + (r - r0) * NB;
      const int64_t* o = ot + t * NR;
#pragma GCC unroll 16
      for (int q = 0; q < NR; ++q) b[q] = o[q] >= 0 ? xc[o[q]] : T(0);
      if (++t == taps) t = 0, xc += xs.c;
    }
  }

  // out = A panel (kc rows of MR) times B panel (kc rows of NR): out[p] the first vector of channels of pixel p,
  // out[NR + p] the second. Not inlined, so its 2 x NR accumulators are allocated to registers on their own.
  // B's pixel p of row r is B[r * NB + p], or, Transposed (tap_major), B[p * KC + r].
  template <bool Transposed>
  __attribute__((noinline)) static void micro(const T* A, const T* B, int64_t kc, Vec<T>* out) {
    Vec<T> acc[2][NR];
#pragma GCC unroll 16
    for (int p = 0; p < NR; ++p) acc[0][p] = acc[1][p] = Vec<T>::zero();
    for (int64_t r = 0; r < kc; ++r, A += MR, B += Transposed ? 1 : NB) {
      const Vec<T> a0 = Vec<T>::load(A), a1 = Vec<T>::load(A + V);
#pragma GCC unroll 16
      for (int p = 0; p < NR; ++p) {
        const Vec<T> b = Vec<T>::set1(B[Transposed ? p * KC : p]);
        acc[0][p] = fma(a0, b, acc[0][p]);
        acc[1][p] = fma(a1, b, acc[1][p]);
      }
    }
#pragma GCC unroll 16
    for (int p = 0; p < NR; ++p) out[p] = acc[0][p], out[NR + p] = acc[1][p];
  }

  // y = the tile + bias. With unit channel stride (NHWC) a pixel's channels are one vector store; otherwise each
  // lane goes to its channel's plane.
  void store_tile(const Vec<T>* acc, const Tile& u, int64_t k0, const T* bias, T* y) const {
    const int64_t nk = Kg - k0 < MR ? Kg - k0 : MR;
    Vec<T> b0 = Vec<T>::zero(), b1 = Vec<T>::zero();
    if (bias) {
      b0 = Vec<T>::load(bias + k0, lane_range(0, nk, V));
      b1 = Vec<T>::load(bias + k0 + V, lane_range(0, nk - V, V));
    }
    T* yk = y + k0 * ys.c;
    if (ys.c == 1 && nk == MR) {
      for (int p = 0; p < u.used; ++p)
        (acc[p] + b0).store(yk + u.yoff[p]), (acc[NR + p] + b1).store(yk + u.yoff[p] + V);
      return;
    }
    alignas(64) T lanes[NR][MR];
#pragma GCC unroll 16
    for (int p = 0; p < NR; ++p) (acc[p] + b0).store(lanes[p]), (acc[NR + p] + b1).store(lanes[p] + V);
    for (int64_t p = 0; p < u.used; ++p) {
      T* yp = yk + u.yoff[p];
      for (int64_t k = 0; k < nk; ++k) yp[k * ys.c] = lanes[p][k];
    }
  }

  // The weights packed whole (A), or, with A null, each panel's chunk packed where it is used: where few items
  // share a panel (a small plane at batch 1), packing them whole would write and read them back once more.
  void run(const T* x, const T* w, const T* bias, T* y, const T* A) const {
    const int64_t per_block = blocks ? (tiles + blocks - 1) / blocks : 0, others = g.N * g.groups * blocks;
    // Few blocks of pixels (small planes, batch 1): also split the channel blocks, so every thread has work.
    const int64_t want = int64_t(2) * max_threads();
    int64_t splits = others >= want || others == 0 ? 1 : (want + others - 1) / others;
    splits = splits < kblocks ? splits : kblocks;
    const int64_t chunks = R > KC ? (R + KC - 1) / KC : 1, kb_most = (kblocks + splits - 1) / splits;
    parallel_for(0, others * splits, 1, [&](int64_t begin, int64_t end) {
      Scratch<T> B(NT * KC * NB + V), panel(A ? 0 : KC * MR);  // B: a vector to spare (pack_tile)
      Scratch<int64_t> ot(NT * taps * NR);
      // A reduction of several chunks sums each tile here, in registers' order, and stores it to y once.
      Scratch<Vec<T>> C(chunks > 1 ? kb_most * NT * 2 * NR : 0);
      Tile tile[NT];
      for (int64_t item = begin; item < end; ++item) {
        const int64_t split = item % splits, blk = item / splits % blocks, grp = item / splits / blocks % g.groups;
        const int64_t n = item / splits / blocks / g.groups;
        const int64_t t0 = blk * per_block, nt = tiles - t0 < per_block ? tiles - t0 : per_block;
        const int64_t kb0 = split * kblocks / splits, kb1 = (split + 1) * kblocks / splits;
        const T* xg = x + n * xs.n + grp * Cg * xs.c;
        T* yg = y + n * ys.n + grp * Kg * ys.c;
        const T* bg = bias ? bias + grp * Kg : nullptr;
        for (int64_t t = 0; t < nt; ++t) tile[t] = map_tile(t0 + t, ot.p + t * taps * NR);
        for (int64_t chunk = 0; chunk < chunks; ++chunk) {
          const int64_t r0 = chunk * KC, kc = R - r0 < KC ? R - r0 : KC;
          for (int64_t t = 0; t < nt; ++t)
            pack_tile(xg, ot.p + t * taps * NR, tile[t], r0, r0 + kc, B.p + t * KC * NB);
          for (int64_t kb = kb0; kb < kb1; ++kb) {
            const T* a = A ? A + ((grp * kblocks + kb) * R + r0) * MR : panel.p;
            if (!A) pack_panel(w, grp, kb, r0, r0 + kc, panel.p);
            for (int64_t t = 0; t < nt; ++t) {
              alignas(64) Vec<T> acc[2 * NR];
              if (tap_major) micro<true>(a, B.p + t * KC * NB, kc, acc);
              else micro<false>(a, B.p + t * KC * NB, kc, acc);
              Vec<T>* c = C.p + ((kb - kb0) * NT + t) * 2 * NR;
              if (chunk > 0)
                for (int i = 0; i < 2 * NR; ++i) acc[i] = acc[i] + c[i];
              if (chunk + 1 < chunks)
                for (int i = 0; i < 2 * NR; ++i) c[i] = acc[i];
              else store_tile(acc, tile[t], kb * MR, bg, yg);
            }
          }
        }
      }
    });
  }
};

template <typename T>
void igemm_any_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y,
                       Strides4 ys, void*) {
  igemm_forward(g, x, xs, w, false, bias, y, ys);
}

}  // namespace

template <typename T>
void igemm_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, bool flipped_weights, const T* bias,
                   T* y, Strides4 ys) {
  const Igemm<T> k(g, xs, ys, flipped_weights);
  const bool whole = k.panel_uses() > 2;
  Scratch<T> A(whole ? g.groups * k.kblocks * Igemm<T>::MR * k.R : 0);
  if (whole) k.pack_weights(w, A.p);
  k.run(x, w, bias, y, whole ? A.p : nullptr);
}
template void igemm_forward(const ConvGeometry&, const float*, Strides4, const float*, bool, const float*, float*,
                            Strides4);
template void igemm_forward(const ConvGeometry&, const double*, Strides4, const double*, bool, const double*,
                            double*, Strides4);

TORCHCONV_DEFINE_KERNEL(igemm_any_forward, forward)

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
