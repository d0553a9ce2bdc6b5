// SIMD vectors for the ISA the including file is compiled for. Only the per-ISA kernel files include this, inside
// their own inline namespace (see the top of cpu/direct/common.h), so each ISA gets its own copy of every function here.
//
// Vec<T> is a vector of `size` lanes with the few operations the direct kernels need. Masks are bit sets (bit l:
// lane l); a masked load reads only the lanes in the mask and gives 0 elsewhere, so it never touches memory
// outside them. With AVX-512 and AVX2 that is the hardware's fault-suppressing masked load; elsewhere a lane loop.
#pragma once

#include <cstdint>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef TC_CPU_CAPABILITY
#error "simd.h is for the per-ISA kernel files, compiled with -DTC_CPU_CAPABILITY=cpu_<isa>"
#endif

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {
namespace simd {

using Mask = uint32_t;

// Lanes [lo, hi) of a vector of n lanes, clipped to [0, n).
inline Mask lane_range(int64_t lo, int64_t hi, int n) {
  lo = lo < 0 ? 0 : lo;
  hi = hi > n ? n : hi;
  if (hi <= lo) return 0;
  const uint64_t upto_hi = hi >= 32 ? ~uint64_t(0) : (uint64_t(1) << hi) - 1;
  return static_cast<Mask>(upto_hi & ~((uint64_t(1) << lo) - 1));
}

// Index tables of Vec::fold for n lanes: lo[w] and hi[w] pick, for each output lane, the two partial sums it adds.
// With a and b each holding n / w groups of w partial sums (lanes 0..n-1 of a, then n..2n-1 of b), the output holds
// a's groups and then b's, each folded to w / 2 lanes: its low half plus its high half.
template <typename I, int N>
struct FoldTables {
  I lo[N + 1][N], hi[N + 1][N];  // indexed by w, a power of two in [2, N]
  constexpr FoldTables() : lo(), hi() {
    for (int w = 2; w <= N; w *= 2)
      for (int k = 0; k < 2 * (N / w); ++k)
        for (int j = 0; j < w / 2; ++j) {
          const int src = (k < N / w ? 0 : N) + (k % (N / w)) * w + j;
          lo[w][k * (w / 2) + j] = I(src), hi[w][k * (w / 2) + j] = I(src + w / 2);
        }
  }
};

#if defined(__AVX512F__)
// 32 registers: up to 16 accumulators leave room for the loaded inputs and a broadcast weight.
constexpr int kAccumulators = 16;

template <typename T>
struct Vec;

template <>
struct Vec<float> {
  static constexpr int size = 16;
  __m512 v;
  static Vec zero() { return {_mm512_setzero_ps()}; }
  static Vec set1(float a) { return {_mm512_set1_ps(a)}; }
  static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static Vec load(const float* p, Mask m) { return {_mm512_maskz_loadu_ps(static_cast<__mmask16>(m), p)}; }
  // Lane l = p[2 l], reading p[0 .. 2 size - 2] only.
  static Vec load_even(const float* p) {
    const __m512 b = _mm512_maskz_loadu_ps(0x7fff, p + 16);
    return {_mm512_permutex2var_ps(_mm512_loadu_ps(p), even_lanes(), b)};
  }
  // Lane l = p[2 l] for the lanes in m: element mask bit 2 l per lane bit l (one pdep, no branch: this runs once
  // per tap in the stride-2 inner loops).
  static Vec load_even(const float* p, Mask m) {
    const uint64_t raw = _pdep_u64(m, 0x5555555555555555ull);
    const __m512 a = _mm512_maskz_loadu_ps(static_cast<__mmask16>(raw), p);
    const __m512 b = _mm512_maskz_loadu_ps(static_cast<__mmask16>(raw >> 16), p + 16);
    return {_mm512_permutex2var_ps(a, even_lanes(), b)};
  }
  // The lanes in m, in order, take p[0], p[1], ... (reading only as many elements as m has lanes).
  static Vec expand(const float* p, Mask m) { return {_mm512_maskz_expandloadu_ps(static_cast<__mmask16>(m), p)}; }
  // Lane l = element 2 l (even) or 2 l + 1 (odd) of a's lanes followed by b's.
  static Vec even(Vec a, Vec b) { return {_mm512_permutex2var_ps(a.v, even_lanes(), b.v)}; }
  static Vec odd(Vec a, Vec b) {
    return {_mm512_permutex2var_ps(a.v, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b.v)};
  }
  static __m512i even_lanes() { return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30); }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store(float* p, Mask m) const { _mm512_mask_storeu_ps(p, static_cast<__mmask16>(m), v); }
  friend Vec fma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  friend Vec operator+(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
  float sum() const { return _mm512_reduce_add_ps(v); }
  static Vec fold(Vec a, Vec b, int w) {
    static constexpr FoldTables<int32_t, 16> t{};
    return {_mm512_add_ps(_mm512_permutex2var_ps(a.v, _mm512_loadu_si512(t.lo[w]), b.v),
                          _mm512_permutex2var_ps(a.v, _mm512_loadu_si512(t.hi[w]), b.v))};
  }
};

template <>
struct Vec<double> {
  static constexpr int size = 8;
  __m512d v;
  static Vec zero() { return {_mm512_setzero_pd()}; }
  static Vec set1(double a) { return {_mm512_set1_pd(a)}; }
  static Vec load(const double* p) { return {_mm512_loadu_pd(p)}; }
  static Vec load(const double* p, Mask m) { return {_mm512_maskz_loadu_pd(static_cast<__mmask8>(m), p)}; }
  static Vec load_even(const double* p) {
    const __m512d b = _mm512_maskz_loadu_pd(0x7f, p + 8);
    return {_mm512_permutex2var_pd(_mm512_loadu_pd(p), even_lanes(), b)};
  }
  static Vec load_even(const double* p, Mask m) {
    const uint32_t raw = _pdep_u32(m, 0x55555555u);
    const __m512d a = _mm512_maskz_loadu_pd(static_cast<__mmask8>(raw), p);
    const __m512d b = _mm512_maskz_loadu_pd(static_cast<__mmask8>(raw >> 8), p + 8);
    return {_mm512_permutex2var_pd(a, even_lanes(), b)};
  }
  static Vec expand(const double* p, Mask m) { return {_mm512_maskz_expandloadu_pd(static_cast<__mmask8>(m), p)}; }
  static Vec even(Vec a, Vec b) { return {_mm512_permutex2var_pd(a.v, even_lanes(), b.v)}; }
  static Vec odd(Vec a, Vec b) { return {_mm512_permutex2var_pd(a.v, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b.v)}; }
  static __m512i even_lanes() { return _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14); }
  void store(double* p) const { _mm512_storeu_pd(p, v); }
  void store(double* p, Mask m) const { _mm512_mask_storeu_pd(p, static_cast<__mmask8>(m), v); }
  friend Vec fma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
  friend Vec operator+(Vec a, Vec b) { return {_mm512_add_pd(a.v, b.v)}; }
  double sum() const { return _mm512_reduce_add_pd(v); }
  static Vec fold(Vec a, Vec b, int w) {
    static constexpr FoldTables<int64_t, 8> t{};
    return {_mm512_add_pd(_mm512_permutex2var_pd(a.v, _mm512_loadu_si512(t.lo[w]), b.v),
                          _mm512_permutex2var_pd(a.v, _mm512_loadu_si512(t.hi[w]), b.v))};
  }
};

#elif defined(__AVX2__)
// 16 registers: 8 accumulators leave room for the loaded inputs and a broadcast weight.
constexpr int kAccumulators = 8;

namespace avx2 {
// All-ones in the 32-bit lanes l whose bit l of m is set (the mask operand of vmaskmov, which suppresses faults
// in the lanes it leaves out: https://www.felixcloutier.com/x86/vmaskmov).
inline __m256i mask32(Mask m) {
  const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(int(m & 0xff)), bits), bits);
}
// The same for 64-bit lanes (bits 0-3).
inline __m256i mask64(Mask m) {
  const __m256i bits = _mm256_setr_epi64x(1, 2, 4, 8);
  return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(int64_t(m & 0xf)), bits), bits);
}
// Bit l of m moved to bit 2 l (lane l of an even load reads element 2 l), without BMI2's pdep.
inline uint32_t spread_even(Mask m) {
  uint32_t x = m & 0xff;
  x = (x | (x << 4)) & 0x0f0fu;
  x = (x | (x << 2)) & 0x3333u;
  return (x | (x << 1)) & 0x5555u;
}
// For each mask of n lanes, the 32-bit source element of each output element of an expanding load: lane l takes
// element popcount(m below l), and a lane of W 32-bit words takes W consecutive words.
template <int N, int W>
struct ExpandTable {
  uint8_t idx[1 << N][8];
  constexpr ExpandTable() : idx() {
    for (int m = 0; m < (1 << N); ++m)
      for (int l = 0, k = 0; l < N; ++l) {
        for (int w = 0; w < W; ++w) idx[m][l * W + w] = uint8_t(k * W + w);
        k += (m >> l) & 1;
      }
  }
};
inline __m256i expand_index(const uint8_t* idx) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(idx)));
}
// Vec::fold's tables (FoldTables) as 32-bit word indices into a's and b's lanes, and a selector of b's.
template <int N, int W>
struct FoldWords {
  int32_t lo[N + 1][8], hi[N + 1][8], lo_b[N + 1][8], hi_b[N + 1][8];
  constexpr FoldWords() : lo(), hi(), lo_b(), hi_b() {
    constexpr FoldTables<int, N> t{};
    for (int w = 2; w <= N; w *= 2)
      for (int l = 0; l < N; ++l)
        for (int k = 0; k < W; ++k) {
          lo[w][l * W + k] = (t.lo[w][l] % N) * W + k, lo_b[w][l * W + k] = t.lo[w][l] >= N ? -1 : 0;
          hi[w][l * W + k] = (t.hi[w][l] % N) * W + k, hi_b[w][l * W + k] = t.hi[w][l] >= N ? -1 : 0;
        }
  }
};
// Words idx of a, or of b where sel is all-ones.
inline __m256 pick(__m256 a, __m256 b, const int32_t* idx, const int32_t* sel) {
  const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx));
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(a, i), _mm256_permutevar8x32_ps(b, i),
                          _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sel))));
}
}  // namespace avx2

template <typename T>
struct Vec;

template <>
struct Vec<float> {
  static constexpr int size = 8;
  __m256 v;
  static Vec zero() { return {_mm256_setzero_ps()}; }
  static Vec set1(float a) { return {_mm256_set1_ps(a)}; }
  static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static Vec load(const float* p, Mask m) { return {_mm256_maskload_ps(p, avx2::mask32(m))}; }
  // Lane l = p[2 l], reading p[0 .. 2 size - 2] only.
  static Vec load_even(const float* p) {
    return even(load(p), {_mm256_maskload_ps(p + 8, avx2::mask32(0x7f))});
  }
  static Vec load_even(const float* p, Mask m) {
    const uint32_t raw = avx2::spread_even(m);
    return even(load(p, raw & 0xff), load(p + 8, raw >> 8));
  }
  // The lanes in m, in order, take p[0], p[1], ... (reading only as many elements as m has lanes).
  static Vec expand(const float* p, Mask m) {
    static constexpr avx2::ExpandTable<8, 1> t{};
    m &= 0xff;
    const __m256 packed = load(p, (Mask(1) << __builtin_popcount(m)) - 1).v;
    const __m256 spread = _mm256_permutevar8x32_ps(packed, avx2::expand_index(t.idx[m]));
    return {_mm256_and_ps(spread, _mm256_castsi256_ps(avx2::mask32(m)))};
  }
  // Lane l = element 2 l (even) or 2 l + 1 (odd) of a's lanes followed by b's: a shuffle within each 128-bit half
  // gives (a0 a2 b0 b2 | a4 a6 b4 b6), then a 64-bit permute puts the pairs in order.
  static Vec even(Vec a, Vec b) { return in_order(_mm256_shuffle_ps(a.v, b.v, _MM_SHUFFLE(2, 0, 2, 0))); }
  static Vec odd(Vec a, Vec b) { return in_order(_mm256_shuffle_ps(a.v, b.v, _MM_SHUFFLE(3, 1, 3, 1))); }
  static Vec in_order(__m256 t) {
    return {_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)))};
  }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store(float* p, Mask m) const { _mm256_maskstore_ps(p, avx2::mask32(m), v); }
  friend Vec fma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  friend Vec operator+(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
  float sum() const {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static Vec fold(Vec a, Vec b, int w) {
    static constexpr avx2::FoldWords<8, 1> t{};
    return {_mm256_add_ps(avx2::pick(a.v, b.v, t.lo[w], t.lo_b[w]), avx2::pick(a.v, b.v, t.hi[w], t.hi_b[w]))};
  }
};

template <>
struct Vec<double> {
  static constexpr int size = 4;
  __m256d v;
  static Vec zero() { return {_mm256_setzero_pd()}; }
  static Vec set1(double a) { return {_mm256_set1_pd(a)}; }
  static Vec load(const double* p) { return {_mm256_loadu_pd(p)}; }
  static Vec load(const double* p, Mask m) { return {_mm256_maskload_pd(p, avx2::mask64(m))}; }
  static Vec load_even(const double* p) {
    return even(load(p), {_mm256_maskload_pd(p + 4, avx2::mask64(0x7))});
  }
  static Vec load_even(const double* p, Mask m) {
    const uint32_t raw = avx2::spread_even(m & 0xf);
    return even(load(p, raw & 0xf), load(p + 4, raw >> 4));
  }
  static Vec expand(const double* p, Mask m) {
    static constexpr avx2::ExpandTable<4, 2> t{};
    m &= 0xf;
    const __m256 packed = _mm256_castpd_ps(load(p, (Mask(1) << __builtin_popcount(m)) - 1).v);
    const __m256 spread = _mm256_permutevar8x32_ps(packed, avx2::expand_index(t.idx[m]));
    return {_mm256_and_pd(_mm256_castps_pd(spread), _mm256_castsi256_pd(avx2::mask64(m)))};
  }
  // unpacklo gives (a0 b0 | a2 b2); the 64-bit permute puts them in order.
  static Vec even(Vec a, Vec b) { return {_mm256_permute4x64_pd(_mm256_unpacklo_pd(a.v, b.v), _MM_SHUFFLE(3, 1, 2, 0))}; }
  static Vec odd(Vec a, Vec b) { return {_mm256_permute4x64_pd(_mm256_unpackhi_pd(a.v, b.v), _MM_SHUFFLE(3, 1, 2, 0))}; }
  void store(double* p) const { _mm256_storeu_pd(p, v); }
  void store(double* p, Mask m) const { _mm256_maskstore_pd(p, avx2::mask64(m), v); }
  friend Vec fma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
  friend Vec operator+(Vec a, Vec b) { return {_mm256_add_pd(a.v, b.v)}; }
  double sum() const {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static Vec fold(Vec a, Vec b, int w) {
    static constexpr avx2::FoldWords<4, 2> t{};
    const __m256 fa = _mm256_castpd_ps(a.v), fb = _mm256_castpd_ps(b.v);
    return {_mm256_add_pd(_mm256_castps_pd(avx2::pick(fa, fb, t.lo[w], t.lo_b[w])),
                          _mm256_castps_pd(avx2::pick(fa, fb, t.hi[w], t.hi_b[w])))};
  }
};

#else
// Lane loops of the baseline's 16-byte registers (SSE2); GCC turns the full-mask paths into vector code, the
// partial masks (row ends only) stay scalar.
constexpr int kVecBytes = 16;
constexpr int kAccumulators = 8;  // 16 registers

template <typename T>
struct Vec {
  static constexpr int size = kVecBytes / sizeof(T);
  static constexpr Mask kFull = (Mask(1) << size) - 1;
  T v[size];
  static Vec zero() { return set1(T(0)); }
  static Vec set1(T a) {
    Vec r;
    for (int l = 0; l < size; ++l) r.v[l] = a;
    return r;
  }
  static Vec load(const T* p) {
    Vec r;
    for (int l = 0; l < size; ++l) r.v[l] = p[l];
    return r;
  }
  static Vec load_even(const T* p) {
    Vec r;
    for (int l = 0; l < size; ++l) r.v[l] = p[2 * l];
    return r;
  }
  static Vec load(const T* p, Mask m) {
    Vec r;
    if (m == kFull) {
      for (int l = 0; l < size; ++l) r.v[l] = p[l];
    } else {
      for (int l = 0; l < size; ++l) r.v[l] = (m >> l) & 1 ? p[l] : T(0);
    }
    return r;
  }
  static Vec load_even(const T* p, Mask m) {
    Vec r;
    for (int l = 0; l < size; ++l) r.v[l] = (m >> l) & 1 ? p[2 * l] : T(0);
    return r;
  }
  static Vec expand(const T* p, Mask m) {
    Vec r;
    for (int l = 0, k = 0; l < size; ++l) r.v[l] = (m >> l) & 1 ? p[k++] : T(0);
    return r;
  }
  static Vec even(Vec a, Vec b) { return interleaved(a, b, 0); }
  static Vec odd(Vec a, Vec b) { return interleaved(a, b, 1); }
  static Vec interleaved(Vec a, Vec b, int parity) {
    Vec r;
    for (int l = 0; l < size; ++l) {
      const int e = 2 * l + parity;
      r.v[l] = e < size ? a.v[e] : b.v[e - size];
    }
    return r;
  }
  void store(T* p) const {
    for (int l = 0; l < size; ++l) p[l] = v[l];
  }
  void store(T* p, Mask m) const {
    if (m == kFull) {
      for (int l = 0; l < size; ++l) p[l] = v[l];
    } else {
      for (int l = 0; l < size; ++l)
        if ((m >> l) & 1) p[l] = v[l];
    }
  }
  friend Vec fma(Vec a, Vec b, Vec c) {
    for (int l = 0; l < size; ++l) c.v[l] += a.v[l] * b.v[l];
    return c;
  }
  friend Vec operator+(Vec a, Vec b) {
    for (int l = 0; l < size; ++l) a.v[l] += b.v[l];
    return a;
  }
  static Vec fold(Vec a, Vec b, int w) {
    static constexpr FoldTables<int, size> t{};
    Vec r;
    for (int l = 0; l < size; ++l) {
      const int lo = t.lo[w][l], hi = t.hi[w][l];
      r.v[l] = (lo < size ? a.v[lo] : b.v[lo - size]) + (hi < size ? a.v[hi] : b.v[hi - size]);
    }
    return r;
  }
  T sum() const {
    T s = 0;
    for (int l = 0; l < size; ++l) s += v[l];
    return s;
  }
};
#endif

// out[i] = v[i].sum() for the Vec<T>::size vectors v[0..size), which it overwrites: a tree of folds (log2(size)
// levels of two permutes and an add per pair of vectors) in place of one full horizontal reduction per vector. The
// end of each grad_weight reduction sums a register tile this way; with short reductions it was a large share.
template <typename T>
inline void sum_each(Vec<T>* v, T* out) {
  int n = Vec<T>::size;
  for (int w = Vec<T>::size; w > 1; w /= 2, n /= 2)
    for (int i = 0; i < n / 2; ++i) v[i] = Vec<T>::fold(v[2 * i], v[2 * i + 1], w);
  v[0].store(out);
}

// Lane l = p[l * step] for the lanes in m, any step (strided layouts such as channels_last columns).
template <typename T>
inline Vec<T> load_strided(const T* p, int64_t step, Mask m) {
  if (step == 1) return Vec<T>::load(p, m);
  if (step == 2) return Vec<T>::load_even(p, m);
  T tmp[Vec<T>::size];
  for (int l = 0; l < Vec<T>::size; ++l) tmp[l] = (m >> l) & 1 ? p[l * step] : T(0);
  return Vec<T>::load(tmp, lane_range(0, Vec<T>::size, Vec<T>::size));
}

// The loads of the kernels' inner loops: Step is the distance between lanes (1, 2, or 0 for any, given by `step`),
// and without Masked every lane is read.
template <int Step, bool Masked, typename T>
inline Vec<T> load_lanes(const T* p, int64_t step, Mask m) {
  if constexpr (Step == 1) return Masked ? Vec<T>::load(p, m) : Vec<T>::load(p);
  else if constexpr (Step == 2) return Masked ? Vec<T>::load_even(p, m) : Vec<T>::load_even(p);
  else return load_strided(p, step, Masked ? m : lane_range(0, Vec<T>::size, Vec<T>::size));
}

// p[l * step] = lane l for the lanes in m.
template <typename T>
inline void store_strided(Vec<T> v, T* p, int64_t step, Mask m) {
  if (step == 1) return v.store(p, m);
  T tmp[Vec<T>::size];
  v.store(tmp, lane_range(0, Vec<T>::size, Vec<T>::size));
  for (int l = 0; l < Vec<T>::size; ++l)
    if ((m >> l) & 1) p[l * step] = tmp[l];
}

}  // namespace simd
}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
