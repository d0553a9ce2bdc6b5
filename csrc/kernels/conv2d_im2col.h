// Convolution as im2col + GEMM, forward and both backward maps, in bounded workspace.
// The batch and the output are processed in tiles of P output pixels, so the column matrix is (C*kh*kw) x P
// whatever N is (torch's slow_conv2d holds all N*C*kh*kw*OH*OW columns at once).
#pragma once

#include <cstddef>

#include "kernels/geometry.h"

namespace torchconv {

enum class ConvPass { Forward, GradInput, GradWeight };

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

// y = conv2d(x, w) + bias. w is contiguous (K, C/groups, kh, kw); bias may be null.
template <typename T>
void conv2d_im2col_forward(const ConvGeometry& g, const T* x, Strides4 xs, const T* w, const T* bias, T* y,
                           Strides4 ys, void* workspace);

// gx = the adjoint of conv2d in x, applied to gy (also conv_transpose2d). gx is overwritten.
template <typename T>
void conv2d_im2col_grad_input(const ConvGeometry& g, const T* gy, Strides4 gys, const T* w, T* gx, Strides4 gxs,
                              void* workspace);

// gw = the adjoint of conv2d in w, applied to gy; gw is contiguous (K, C/groups, kh, kw) and overwritten.
// Tiles are summed in order into gw, so the result does not depend on the thread count.
template <typename T>
void conv2d_im2col_grad_weight(const ConvGeometry& g, const T* x, Strides4 xs, const T* gy, Strides4 gys, T* gw,
                               void* workspace);

}  // namespace torchconv
