// Convolution as im2col + GEMM, forward and both backward maps, in bounded workspace.
// The batch and the output are processed in tiles of P output pixels, so the column matrix is (C*kh*kw) x P
// whatever N is (torch's slow_conv2d holds all N*C*kh*kw*OH*OW columns at once).
#pragma once

#include <cstddef>

#include "common/geometry.h"

namespace torchconv {

// Whether the column matrix is the input itself: a 1x1 kernel at unit stride without padding reads each input pixel
// once, in order. Such calls run their GEMMs on the tensors in place, an image at a time, with no column copy (as
// torch's slow_conv2d does for 1x1), given tensors whose planes are matrices (plane_is_matrix).
inline bool im2col_in_place(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pad_t == 0 && g.pad_b == 0 && g.pad_l == 0 &&
         g.pad_r == 0;
}

// Whether a tensor of rows W wide holds each image as a (channels x pixels) matrix a GEMM reads in place: one
// uniform pixel stride, with pixels (contiguous) or channels (channels_last) adjacent.
inline bool plane_is_matrix(Strides4 s, int64_t W) { return s.h == W * s.w && (s.w == 1 || s.c == 1); }

// Budget for one tile's columns plus its output tile. 4 MiB keeps both within this machine's L2 + L3 share
// while leaving P large enough (hundreds of pixels on ResNet layers) for an efficient GEMM.
constexpr int64_t kTileBudgetBytes = int64_t(4) << 20;

// Workspace carve-up for one call; offsets are in bytes from the start of the workspace.
struct Im2colPlan {
  int64_t tile_pixels = 0;  // P
  int64_t map_offset = 0, col_offset = 0, tile_offset = 0, partial_offset = 0;
  int64_t bytes = 0;        // total workspace
};
Im2colPlan plan_im2col(const ConvGeometry& g, ConvPass pass, size_t elem_size);

// The kernels themselves (gemm1x1_matrix_<pass> and cols_any_<pass>) are entries of the kernel table
// (cpu/kernels.h). gemm1x1 needs im2col_in_place(g) and tensors whose planes are matrices (plane_is_matrix); cols
// takes any strides. Results do not depend on the thread count (runtime.h's gemm; grad_weight sums tiles in order).

}  // namespace torchconv
