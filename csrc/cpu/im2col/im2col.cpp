#include "cpu/im2col/im2col.h"

#include <algorithm>

#include "cpu/runtime.h"

namespace torchconv {
namespace {

// Calls fn(n, oh, ow_begin, ow_end, q) for each run of a tile that lies in one output row; q is the run's
// offset in the tile. Walking runs keeps divisions out of the inner loops.
template <typename F>
inline void for_each_row_run(const ConvGeometry& g, int64_t p0, int64_t P, const F& fn) {
  const int64_t ohw = g.OH * g.OW, end = p0 + P;
  int64_t p = p0, n = p0 / ohw, oh = (p0 % ohw) / g.OW, ow = p0 % g.OW;
  while (p < end) {
    const int64_t len = std::min(g.OW - ow, end - p);
    fn(n, oh, ow, ow + len, p - p0);
    p += len;
    ow = 0;
    if (++oh == g.OH) oh = 0, ++n;
  }
}

// Aim for chunks of about this many elements per task, so small tiles are not split into slivers.
constexpr int64_t kGrainElems = 16384;
inline int64_t grain_for(int64_t per_item) {
  return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, per_item));
}

}  // namespace

InputMap fill_input_map(const ConvGeometry& g, int64_t* storage) {
  int64_t* rows = storage;
  int64_t* cols = storage + g.kh * g.OH;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t oh = 0; oh < g.OH; ++oh) rows[i * g.OH + oh] = g.in_row(oh, i);
  for (int64_t j = 0; j < g.kw; ++j)
    for (int64_t ow = 0; ow < g.OW; ++ow) cols[j * g.OW + ow] = g.in_col(ow, j);
  return {rows, cols};
}

template <typename T>
void im2col(const ConvGeometry& g, InputMap map, const T* x, Strides4 xs, int64_t p0, int64_t P, T* col) {
  const int64_t kk = g.kh * g.kw;
  parallel_for(0, g.col_rows(), grain_for(P), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = r / kk, i = (r % kk) / g.kw, j = r % g.kw;
      const int64_t* cmap = map.cols + j * g.OW;
      T* dst = col + r * P;
      for_each_row_run(g, p0, P, [&](int64_t n, int64_t oh, int64_t ow0, int64_t ow1, int64_t q) {
        const int64_t ih = map.rows[i * g.OH + oh];
        T* d = dst + q - ow0;
        if (ih < 0) {
          std::fill(d + ow0, d + ow1, T(0));
          return;
        }
        const T* src = x + n * xs.n + c * xs.c + ih * xs.h;
        for (int64_t ow = ow0; ow < ow1; ++ow) {
          const int64_t iw = cmap[ow];
          d[ow] = iw < 0 ? T(0) : src[iw * xs.w];
        }
      });
    }
  });
}

template <typename T>
void col2im(const ConvGeometry& g, InputMap map, const T* col, int64_t p0, int64_t P, T* x, Strides4 xs) {
  parallel_for(0, g.C, grain_for(g.kh * g.kw * P), [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c)
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t* cmap = map.cols + j * g.OW;
          const T* src = col + ((c * g.kh + i) * g.kw + j) * P;
          for_each_row_run(g, p0, P, [&](int64_t n, int64_t oh, int64_t ow0, int64_t ow1, int64_t q) {
            const int64_t ih = map.rows[i * g.OH + oh];
            if (ih < 0) return;
            T* dst = x + n * xs.n + c * xs.c + ih * xs.h;
            const T* s = src + q - ow0;
            for (int64_t ow = ow0; ow < ow1; ++ow) {
              const int64_t iw = cmap[ow];
              if (iw >= 0) dst[iw * xs.w] += s[ow];
            }
          });
        }
  });
}

template <typename T>
void gather_output_tile(const ConvGeometry& g, const T* y, Strides4 ys, int64_t p0, int64_t P, T* tile) {
  parallel_for(0, g.K, grain_for(P), [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k)
      for_each_row_run(g, p0, P, [&](int64_t n, int64_t oh, int64_t ow0, int64_t ow1, int64_t q) {
        const T* src = y + n * ys.n + k * ys.c + oh * ys.h;
        T* d = tile + k * P + q - ow0;
        for (int64_t ow = ow0; ow < ow1; ++ow) d[ow] = src[ow * ys.w];
      });
  });
}

template <typename T>
void scatter_output_tile(const ConvGeometry& g, const T* tile, const T* bias, int64_t p0, int64_t P, T* y,
                         Strides4 ys) {
  parallel_for(0, g.K, grain_for(P), [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const T b = bias ? bias[k] : T(0);
      for_each_row_run(g, p0, P, [&](int64_t n, int64_t oh, int64_t ow0, int64_t ow1, int64_t q) {
        T* dst = y + n * ys.n + k * ys.c + oh * ys.h;
        const T* s = tile + k * P + q - ow0;
        for (int64_t ow = ow0; ow < ow1; ++ow) dst[ow * ys.w] = s[ow] + b;
      });
    }
  });
}

template <typename T>
void zero_4d(const int64_t* sizes, Strides4 s, T* x) {
  parallel_for(0, sizes[0] * sizes[1], grain_for(sizes[2] * sizes[3]), [&](int64_t begin, int64_t end) {
    for (int64_t nc = begin; nc < end; ++nc) {
      T* base = x + (nc / sizes[1]) * s.n + (nc % sizes[1]) * s.c;
      for (int64_t h = 0; h < sizes[2]; ++h)
        for (int64_t w = 0; w < sizes[3]; ++w) base[h * s.h + w * s.w] = T(0);
    }
  });
}

#define TORCHCONV_INSTANTIATE(T)                                                                           \
  template void im2col<T>(const ConvGeometry&, InputMap, const T*, Strides4, int64_t, int64_t, T*);        \
  template void col2im<T>(const ConvGeometry&, InputMap, const T*, int64_t, int64_t, T*, Strides4);        \
  template void gather_output_tile<T>(const ConvGeometry&, const T*, Strides4, int64_t, int64_t, T*);      \
  template void scatter_output_tile<T>(const ConvGeometry&, const T*, const T*, int64_t, int64_t, T*,     \
                                       Strides4);                                                          \
  template void zero_4d<T>(const int64_t*, Strides4, T*);
TORCHCONV_INSTANTIATE(float)
TORCHCONV_INSTANTIATE(double)
#undef TORCHCONV_INSTANTIATE

}  // namespace torchconv
