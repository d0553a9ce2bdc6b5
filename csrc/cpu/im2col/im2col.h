// Gathers between tensors and the column matrices of im2col + GEMM, on raw pointers with any strides.
// A tile is a range [p0, p0 + P) of output pixels, flattened over (n, oh, ow); it may span images.
#pragma once

#include "common/geometry.h"

namespace torchconv {

// Padding-mapped input coordinates, computed once per call: rows[i * OH + oh] = g.in_row(oh, i),
// cols[j * OW + ow] = g.in_col(ow, j). Every padding mode then costs the same as zeros in the inner loops.
struct InputMap {
  const int64_t* rows;
  const int64_t* cols;
};
inline int64_t input_map_elems(const ConvGeometry& g) { return g.kh * g.OH + g.kw * g.OW; }
InputMap fill_input_map(const ConvGeometry& g, int64_t* storage);

// col[(c, i, j), q] = x[n, c, ih, iw] of tile pixel q, or 0 in zero padding. col is (C*kh*kw) x P.
template <typename T>
void im2col(const ConvGeometry& g, InputMap map, const T* x, Strides4 xs, int64_t p0, int64_t P, T* col);

// The adjoint of im2col: x[n, c, ih, iw] += col[(c, i, j), q]. Threads own channels, so no two write one element
// and the order of the sums is fixed.
template <typename T>
void col2im(const ConvGeometry& g, InputMap map, const T* col, int64_t p0, int64_t P, T* x, Strides4 xs);

// tile[k, q] = y[n, k, oh, ow] for tile pixel q (y is output-shaped: N x K x OH x OW). tile is K x P.
template <typename T>
void gather_output_tile(const ConvGeometry& g, const T* y, Strides4 ys, int64_t p0, int64_t P, T* tile);

// y[n, k, oh, ow] = tile[k, q] + bias[k] (bias may be null).
template <typename T>
void scatter_output_tile(const ConvGeometry& g, const T* tile, const T* bias, int64_t p0, int64_t P, T* y,
                         Strides4 ys);

// Sets a 4-D tensor of shape (d0, d1, d2, d3) with strides s to zero.
template <typename T>
void zero_4d(const int64_t* sizes, Strides4 s, T* x);

}  // namespace torchconv
