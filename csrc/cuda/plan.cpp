// The CUDA kernel registry and its auto rule.
#include "cuda/plan.h"

#include <algorithm>

#include "common/algorithm_list.h"
#include "cuda/launch_plan.h"

namespace torchconv::cuda {
namespace {

bool always(const ConvGeometry&, size_t) { return true; }
// A block stages kTileChannels filters of its group in shared memory; the tile pays when a group has several input
// channels (a depthwise filter is a handful of values, read once per output by direct_nchw_forward).
bool tiled(const ConvGeometry& g, size_t acc) { return g.Cg() > 1 && tiled_forward_shared(g, acc) <= kSharedLimit; }

using P = ConvPass;
using F = Family;
using L = Layout;
using K = CudaKernel;

// Within a pass and family the first row that applies runs.
constexpr CudaRow kRows[] = {
    {"direct/direct_nhwc_forward", P::Forward, F::Direct, L::Nhwc, K::DirectNhwcForward, always,
     "one thread per output, consecutive threads along the channels: coalesced on channels_last tensors"},
    {"direct/tiled_nchw_forward", P::Forward, F::Direct, L::Any, K::TiledNchwForward, tiled,
     "grouped: a block stages 4 filters of a group in shared memory and reads each input once for all 4"},
    {"direct/direct_nchw_forward", P::Forward, F::Direct, L::Any, K::DirectNchwForward, always,
     "one thread per output, consecutive threads along a row: depthwise and any groups, no shared memory"},
    {"im2col/cols_any_forward", P::Forward, F::Im2col, L::Any, K::Im2col, always,
     "columns of a chunk of images, one batched GEMM (cuBLAS) over groups, then the bias and layout"},
    {"direct/direct_nhwc_grad_input", P::GradInput, F::Direct, L::Nhwc, K::DirectNhwcGradInput, always,
     "one thread per input element gathers its readers through the inverse padding map; along the channels"},
    {"direct/direct_nchw_grad_input", P::GradInput, F::Direct, L::Any, K::DirectNchwGradInput, always,
     "one thread per input element gathers its readers through the inverse padding map; along a row"},
    {"im2col/cols_any_grad_input", P::GradInput, F::Im2col, L::Any, K::Col2im, always,
     "one batched GEMM (cuBLAS) into columns, then col2im as a gather: no atomics"},
    {"direct/reduce_nhwc_grad_weight", P::GradWeight, F::Direct, L::Nhwc, K::ReduceNhwcGradWeight, always,
     "block reductions over 32 output channels at a time, a fixed tree: deterministic, coalesced on channels_last"},
    {"direct/reduce_nchw_grad_weight", P::GradWeight, F::Direct, L::Any, K::ReduceNchwGradWeight, always,
     "a block reduction per weight element, a fixed tree: deterministic, no atomics"},
    {"im2col/cols_any_grad_weight", P::GradWeight, F::Im2col, L::Any, K::Im2col, always,
     "columns of a chunk of images, one batched GEMM (cuBLAS); chunks added in order: deterministic"},
};

bool runs(const CudaRow& r, const ConvGeometry& g, const Operands& ops, size_t acc) {
  if (r.layout == L::Nhwc && (ops.in.c != 1 || ops.out.c != 1)) return false;
  return r.applies(g, acc);
}

}  // namespace

const CudaRow* cuda_rows(int* count) {
  *count = int(sizeof(kRows) / sizeof(kRows[0]));
  return kRows;
}

CudaPlan make_cuda_plan(const ConvGeometry& g, ConvPass pass, const std::string& requested, const Operands& ops,
                        size_t acc) {
  if (is_algorithm_list(requested)) return make_cuda_plan(g, pass, list_entry(requested, pass, kRows), ops, acc);
  // auto: grouped and depthwise layers go to the direct kernels (cuBLAS has no grouped GEMM that pays at these
  // sizes), dense ones to im2col + cuBLAS.
  F family = g.groups > 1 ? F::Direct : F::Im2col;
  std::string why = g.groups > 1 ? "auto: groups > 1 (direct kernels)" : "auto: groups == 1 (im2col + cuBLAS)";
  if (requested == "im2col" || requested == "direct") {
    family = requested == "im2col" ? F::Im2col : F::Direct;
    why = "requested";
  } else if (requested != "auto") {
    const CudaRow* named = nullptr;
    for (const CudaRow& r : kRows)
      if (requested == r.name) named = &r;
    if (!named) {
      std::string names;
      for (const CudaRow& r : kRows) names += std::string(names.empty() ? "" : ", ") + r.name;
      detail::fail("unknown algorithm '", requested, "' for the CUDA backend; expected auto, im2col, direct or one of ",
                   names);
    }
    family = named->family;
    why = "requested";
    if (named->pass == pass) {
      if (runs(*named, g, ops, acc)) return {named, why};
      detail::fail("kernel ", requested, " does not apply to this call (", named->reason, ")");
    }
  }
  for (const CudaRow& r : kRows)
    if (r.pass == pass && r.family == family && runs(r, g, ops, acc)) return {&r, why};
  detail::fail("no CUDA kernel for this call");  // each family ends in a row that applies to every call
}

int64_t& column_budget() {
  static int64_t bytes = kColumnBytes;
  return bytes;
}

int64_t column_images(const ConvGeometry& g, size_t elem) {
  // Per image: its columns (C kh kw x OH OW) and the GEMM's rows (K x OH OW); doubles, as a product may pass 2^63.
  const double image = double(elem) * double(g.OH) * double(g.OW) * (double(g.col_rows()) + double(g.K));
  const double fit = double(column_budget()) / std::max(image, 1.0);
  return std::max<int64_t>(1, fit >= double(g.N) ? g.N : int64_t(fit));
}

bool& emulation_active() {
  static bool on = false;
  return on;
}
bool& plant_missing_barrier() {
  static bool on = false;
  return on;
}

}  // namespace torchconv::cuda
