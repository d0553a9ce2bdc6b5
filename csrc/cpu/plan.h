// The registry of CPU kernels and the plan: which kernel runs one pass of one call, decided once, in one place.
// The adapters (cpu/adapter.h) ask make_plan, lay the operands out as the chosen row reads them, and run it;
// torchconv.explain and torchconv.kernels read the same rows. Torch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/geometry.h"
#include "cpu/kernels.h"

namespace torchconv {

enum class Family { Im2col, Direct };
inline const char* family_name(Family f) { return f == Family::Im2col ? "im2col" : "direct"; }

// How a kernel reads its tensors in place; the adapter copies an operand that does not fit (contiguous), except
// that it never copies into Nhwc: a row of that layout applies only to tensors already laid out so.
enum class Layout {
  Nchw,    // rows with unit stride (contiguous tensors and slices of them)
  Nhwc,    // channels with unit stride (channels_last), every tensor of the call
  Any,     // any strides
  Matrix,  // each image a (channels x pixels) matrix with one pixel stride (contiguous or channels_last)
};
inline constexpr const char* kLayoutNames[] = {"nchw", "nhwc", "any", "matrix"};

// Strides of one call's tensors as the plan sees them: the input-shaped one (x, or gx for grad_input) and the
// output-shaped one (y, or gy for the backward passes).
struct Operands {
  Strides4 in, out;
  size_t elem_size;
};

struct KernelRow {
  KernelId id;
  const char* name;  // "<family>/<name>", as explain reports it and algorithm= accepts it
  ConvPass pass;
  Family family;
  Layout layout;
  bool (*applies)(const ConvGeometry& g, size_t elem_size);  // the geometry and dtype it computes
  int64_t (*workspace)(const ConvGeometry& g, size_t elem_size);  // scratch bytes one call takes
  bool nonfinite_exact;  // multiplies every tap as torch does: a NaN or Inf needs no im2col redo (cpu/nonfinite.h)
  const char* reason;
};

// Every row, in the plan's order of preference within a pass and family.
const KernelRow* kernel_rows(int* count);

struct Plan {
  const KernelRow* row;
  std::string why;  // why this family: auto's rule, or the request
};

// requested: "auto", "im2col", "direct", or a row's name, which forces that kernel in its own pass and its family
// in the other passes (so a forced forward kernel can be trained through), or a comma-separated list of row names
// (or auto), each forced in its own pass, auto in the passes the list names none of. Raises for an unknown name or
// a kernel that does not apply, naming those that do.
Plan make_plan(const ConvGeometry& g, ConvPass pass, const std::string& requested, const Operands& ops);

// The im2col row of this pass: the redo after a direct pass meets NaN or Inf.
const KernelRow& im2col_row(const ConvGeometry& g, ConvPass pass);

// float16 and bfloat16 calls are computed in float32, on float32 copies of a chunk of the batch at a time
// (cpu/adapter.h, Batch): the images per chunk, so that the copies of one chunk's input- and output-shaped tensors
// take at most kStagingBytes (one image at least), and the bytes those copies take.
inline constexpr int64_t kStagingBytes = int64_t(32) << 20;
int64_t staging_images(const ConvGeometry& g);
int64_t staging_bytes(const ConvGeometry& g);

// Whether a kernel of this layout reads a tensor of these strides (rows W wide) in place.
bool reads_in_place(Layout layout, Strides4 s, int64_t W);

}  // namespace torchconv
