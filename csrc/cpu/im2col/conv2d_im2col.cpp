#include "cpu/im2col/conv2d_im2col.h"

#include <algorithm>

#include "cpu/im2col/im2col.h"
#include "cpu/kernels.h"
#include "cpu/runtime.h"

namespace torchconv {
namespace {

constexpr int64_t kAlign = 64;
inline int64_t align_up(int64_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

// The workspace of one call, carved up as plan_im2col laid it out, with the padding maps filled in.
template <typename T>
struct Buffers {
  int64_t tile_pixels;
  InputMap map;
  T *col, *tile, *partial;

  Buffers(const ConvGeometry& g, ConvPass pass, void* workspace) {
    const Im2colPlan plan = plan_im2col(g, pass, sizeof(T));
    char* base = static_cast<char*>(workspace);
    tile_pixels = plan.tile_pixels;
    map = fill_input_map(g, reinterpret_cast<int64_t*>(base + plan.map_offset));
    col = reinterpret_cast<T*>(base + plan.col_offset);
    tile = reinterpret_cast<T*>(base + plan.tile_offset);
    partial = reinterpret_cast<T*>(base + plan.partial_offset);
  }
};

// Calls fn(p0, P) for each tile of output pixels, in order.
template <typename F>
void for_each_tile(const ConvGeometry& g, int64_t tile_pixels, const F& fn) {
  const int64_t total = g.out_pixels();
  for (int64_t p0 = 0; p0 < total; p0 += tile_pixels) fn(p0, std::min(tile_pixels, total - p0));
}

// One image's (channels x pixels) plane of a tensor whose planes are matrices: element (c, q) at p[c * ld + q], or
// at p[q * ld + c] when `trans` (channels_last).
template <typename T>
struct PlaneMatrix {
  T* p;
  int64_t ld;
  bool trans;
};
template <typename T>
PlaneMatrix<T> plane_matrix(T* base, Strides4 s, int64_t W, int64_t n, int64_t c0) {
  if (!plane_is_matrix(s, W)) detail::fail("torchconv internal error: a 1x1 GEMM operand's planes are not matrices");
  const bool trans = s.w != 1;
  return {base + n * s.n + c0 * s.c, trans ? s.w : s.c, trans};
}

// C = op(A) op(B) into the m x n plane matrix c, either way round: a transposed c is written as op(B)^T op(A)^T.
template <typename T>
void gemm_into(PlaneMatrix<T> c, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
               const T* b, int64_t ldb) {
  if (c.trans) gemm<T>(!tb, !ta, n, m, k, b, ldb, a, lda, c.p, c.ld);
  else gemm<T>(ta, tb, m, n, k, a, lda, b, ldb, c.p, c.ld);
}

}  // namespace

Im2colPlan plan_im2col(const ConvGeometry& g, ConvPass pass, size_t elem_size) {
  Im2colPlan p;
  const int64_t total = g.out_pixels(), per_pixel = std::max<int64_t>(1, g.col_rows() + g.K);
  const int64_t elem = static_cast<int64_t>(elem_size);
  // At least 16 pixels a tile even for huge C*kh*kw, so the GEMM never degenerates to a matrix-vector product.
  p.tile_pixels = std::min(total, std::max<int64_t>(16, kTileBudgetBytes / (per_pixel * elem)));
  const int64_t P = p.tile_pixels;
  p.map_offset = 0;
  p.col_offset = align_up(input_map_elems(g) * int64_t(sizeof(int64_t)));
  p.tile_offset = p.col_offset + align_up(g.col_rows() * P * elem);
  p.partial_offset = p.tile_offset + align_up(g.K * P * elem);
  p.bytes = p.partial_offset + (pass == ConvPass::GradWeight ? align_up(g.Kg() * g.Cg() * g.kh * g.kw * elem) : 0);
  if (im2col_in_place(g))  // no map, columns or tile: only grad_weight's partial sums
    p = {total, 0, 0, 0, 0, pass == ConvPass::GradWeight ? g.Kg() * g.Cg() * elem : 0};
  if (total == 0) p = Im2colPlan{};
  return p;
}

// The 1x1 GEMM on the tensors in place (im2col_in_place): one GEMM per image and group, no columns.
template <typename T>
void gemm1x1_matrix_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y,
                            Strides4 ys, void*) {
  const int64_t Kg = g.Kg(), R = g.Cg(), P = g.H * g.W;  // per group: W_g is Kg x R, x_g R x P
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const auto xm = plane_matrix(x, xs, g.W, n, grp * R);
      gemm_into(plane_matrix(y, ys, g.W, n, grp * Kg), false, xm.trans, Kg, P, R, w + grp * Kg * R, R, xm.p, xm.ld);
    }
  if (!bias) return;
  parallel_for(0, g.N * g.K, 1, [&](int64_t begin, int64_t end) {
    for (int64_t nk = begin; nk < end; ++nk) {
      T* plane = y + nk / g.K * ys.n + nk % g.K * ys.c;
      for (int64_t q = 0; q < P; ++q) plane[q * ys.w] += bias[nk % g.K];  // pixels: one stride (plane_is_matrix)
    }
  });
}

template <typename T>
void cols_any_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y, Strides4 ys,
                      void* workspace) {
  const int64_t Kg = g.Kg(), R = g.Cg() * g.kh * g.kw;  // per group: W_g is Kg x R, columns R x P
  const Buffers<T> b(g, ConvPass::Forward, workspace);
  for_each_tile(g, b.tile_pixels, [&](int64_t p0, int64_t P) {
    im2col(g, b.map, x, xs, p0, P, b.col);
    for (int64_t grp = 0; grp < g.groups; ++grp)
      gemm<T>(false, false, Kg, P, R, w + grp * Kg * R, R, b.col + grp * R * P, P, b.tile + grp * Kg * P, P);
    scatter_output_tile(g, b.tile, bias, p0, P, y, ys);
  });
}

// gx_g (R x P) = W_g^T gy_g, written whole.
template <typename T>
void gemm1x1_matrix_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs,
                               void*) {
  const int64_t Kg = g.Kg(), R = g.Cg();
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const auto gym = plane_matrix(gy, gys, g.W, n, grp * Kg);
      gemm_into(plane_matrix(gx, gxs, g.W, n, grp * R), true, gym.trans, R, g.H * g.W, Kg, w + grp * Kg * R, R,
                gym.p, gym.ld);
    }
}

template <typename T>
void cols_any_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs,
                         void* workspace) {
  const int64_t sizes[4] = {g.N, g.C, g.H, g.W};
  const int64_t Kg = g.Kg(), R = g.Cg() * g.kh * g.kw;
  zero_4d(sizes, gxs, gx);
  const Buffers<T> b(g, ConvPass::GradInput, workspace);
  for_each_tile(g, b.tile_pixels, [&](int64_t p0, int64_t P) {
    gather_output_tile(g, gy, gys, p0, P, b.tile);
    // columns_g (R x P) = W_g^T (R x Kg) . gy_g (Kg x P)
    for (int64_t grp = 0; grp < g.groups; ++grp)
      gemm<T>(true, false, R, P, Kg, w + grp * Kg * R, R, b.tile + grp * Kg * P, P, b.col + grp * R * P, P);
    col2im(g, b.map, b.col, p0, P, gx, gxs);
  });
}

// partial (Kg x R) = gy_g (Kg x P) . x_g^T (P x R) per image and group, added into gw in a fixed order.
template <typename T>
void accumulate(const ConvGeometry& g, const T* partial, T* dst) {
  parallel_for(0, g.Kg() * g.Cg() * g.kh * g.kw, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dst[i] += partial[i];
  });
}

template <typename T>
void gemm1x1_matrix_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw,
                                void* workspace) {
  const int64_t Kg = g.Kg(), R = g.Cg();
  std::fill(gw, gw + g.K * R, T(0));
  T* partial = static_cast<T*>(workspace);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const auto gym = plane_matrix(gy, gys, g.W, n, grp * Kg);
      const auto xm = plane_matrix(x, xs, g.W, n, grp * R);
      gemm_into(PlaneMatrix<T>{partial, R, false}, gym.trans, !xm.trans, Kg, R, g.H * g.W, gym.p, gym.ld, xm.p,
                xm.ld);
      accumulate(g, partial, gw + grp * Kg * R);
    }
}

template <typename T>
void cols_any_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw,
                          void* workspace) {
  const int64_t Kg = g.Kg(), R = g.Cg() * g.kh * g.kw;
  std::fill(gw, gw + g.K * R, T(0));
  const Buffers<T> b(g, ConvPass::GradWeight, workspace);
  for_each_tile(g, b.tile_pixels, [&](int64_t p0, int64_t P) {
    im2col(g, b.map, x, xs, p0, P, b.col);
    gather_output_tile(g, gy, gys, p0, P, b.tile);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      gemm<T>(false, true, Kg, R, P, b.tile + grp * Kg * P, P, b.col + grp * R * P, P, b.partial, R);
      accumulate(g, b.partial, gw + grp * Kg * R);
    }
  });
}

TORCHCONV_DEFINE_KERNEL(gemm1x1_matrix_forward, forward)
TORCHCONV_DEFINE_KERNEL(cols_any_forward, forward)
TORCHCONV_DEFINE_KERNEL(gemm1x1_matrix_grad_input, grad_input)
TORCHCONV_DEFINE_KERNEL(cols_any_grad_input, grad_input)
TORCHCONV_DEFINE_KERNEL(gemm1x1_matrix_grad_weight, grad_weight)
TORCHCONV_DEFINE_KERNEL(cols_any_grad_weight, grad_weight)

}  // namespace torchconv
