// The kernel registry and the auto rule. Each rule's timings are in bench/DECISIONS.md, under the rule's name.
#include "cpu/plan.h"

#include <algorithm>
#include <cstdint>

#include "common/algorithm_list.h"
#include "common/flipped.h"
#include "cpu/im2col/conv2d_im2col.h"
#include "cpu/isa/cpu_capability.h"
#include "cpu/runtime.h"

namespace torchconv {
namespace {

// ---- what each kernel computes ----------------------------------------------------------------------------------

bool always(const ConvGeometry&, size_t) { return true; }
bool depthwise(const ConvGeometry& g) { return g.Cg() == 1 && g.Kg() == 1; }
bool depthwise_any(const ConvGeometry& g, size_t) { return depthwise(g); }

// The NCHW depthwise tiles: one channel per group, 3x3 or 5x5, stride 1 or 2 both ways, no dilation, zero padding.
bool depthwise_tile(const ConvGeometry& g, size_t) {
  return g.Cg() == 1 && g.Kg() == 1 && g.kh == g.kw && (g.kh == 3 || g.kh == 5) && g.sh == g.sw &&
         (g.sh == 1 || g.sh == 2) && g.dh == 1 && g.dw == 1 && g.mode == PadMode::Zeros;
}
bool depthwise_tile_s2(const ConvGeometry& g, size_t e) { return depthwise_tile(g, e) && g.sh == 2; }

// grad_input is a forward over the flipped kernel: zero padding, unit stride, padding within the kernel's extent.
bool grad_input_is_forward(const ConvGeometry& g) {
  const int64_t ekh = (g.kh - 1) * g.dh, ekw = (g.kw - 1) * g.dw;
  return g.mode == PadMode::Zeros && g.sh == 1 && g.sw == 1 && g.pad_t <= ekh && g.pad_b <= ekh &&
         g.pad_l <= ekw && g.pad_r <= ekw;
}
bool flip_dw(const ConvGeometry& g, size_t) { return grad_input_is_forward(g) && depthwise(g); }
bool flip_dw_tile(const ConvGeometry& g, size_t e) {
  return grad_input_is_forward(g) && depthwise_tile(flipped(g), e);
}
bool flip_any(const ConvGeometry& g, size_t) { return grad_input_is_forward(g); }
bool dw_scatter(const ConvGeometry& g, size_t) { return depthwise(g) && !grad_input_is_forward(g); }

// The input-channels-along-the-vector grad_weight: a 3x3 kernel, and a group's input channels filling whole
// 64-byte vectors (so whole vectors on every ISA). Each thread packs one image's block of channels, padded, which
// must fit in half of Zen 4's 1 MiB L2 (up to about 90 x 90 pixels), and keeps Kg x 9 accumulators a vector wide.
bool cvec_applies(const ConvGeometry& g, size_t elem_size) {
  const int64_t hp = g.H + g.pad_t + g.pad_b, wp = g.W + g.pad_l + g.pad_r;  // each below 2^62 (make_geometry)
  constexpr int64_t kMaxPixels = (int64_t(512) << 10) / 64;
  return g.kh == 3 && g.kw == 3 && g.Cg() > 0 && g.Cg() * int64_t(elem_size) % 64 == 0 && hp <= kMaxPixels &&
         wp <= kMaxPixels && hp * wp <= kMaxPixels;
}
bool gemm1x1(const ConvGeometry& g, size_t) { return im2col_in_place(g); }

// ---- the scratch each takes -------------------------------------------------------------------------------------

int64_t none(const ConvGeometry&, size_t) { return 0; }
int64_t im2col_forward(const ConvGeometry& g, size_t e) { return plan_im2col(g, ConvPass::Forward, e).bytes; }
int64_t im2col_grad_input(const ConvGeometry& g, size_t e) { return plan_im2col(g, ConvPass::GradInput, e).bytes; }
int64_t im2col_grad_weight(const ConvGeometry& g, size_t e) { return plan_im2col(g, ConvPass::GradWeight, e).bytes; }
int64_t tap_table(const ConvGeometry& g, size_t e) { return g.C * g.kh * g.kw * int64_t(e); }  // (tap, channel)
// The weights packed in panels of 2 vectors of output channels of the ISA in use, the last one zero-filled.
int64_t igemm_panels(const ConvGeometry& g, size_t e) {
  const std::string isa = cpu_capability();
  const int64_t mr = 2 * (isa == "avx512" ? 64 : isa == "avx2" ? 32 : 16) / int64_t(e);
  return g.groups * ((g.Kg() + mr - 1) / mr * mr) * g.Cg() * g.kh * g.kw * int64_t(e);
}
int64_t flipped_weight(const ConvGeometry& g, size_t e) { return g.K * g.Cg() * g.kh * g.kw * int64_t(e); }
int64_t flipped_weight_and_table(const ConvGeometry& g, size_t e) {
  return flipped_weight(g, e) + tap_table(flipped(g), e);
}
int64_t flipped_panels(const ConvGeometry& g, size_t e) { return igemm_panels(flipped(g), e); }
// Per thread: the packed padded plane and the accumulators, at the widest vector (64 bytes).
int64_t cvec_bytes(const ConvGeometry& g, size_t) {
  return max_threads() * ((g.H + g.pad_t + g.pad_b) * (g.W + g.pad_l + g.pad_r) + g.Kg() * 9) * 64;
}

using P = ConvPass;
using F = Family;
using L = Layout;
using K = KernelId;

// Within a pass and family the first row that applies runs: the specialised kernels before the general ones.
constexpr KernelRow kRows[] = {
    {K::DwNhwcForward, "direct/dw_nhwc_forward", P::Forward, F::Direct, L::Nhwc, depthwise_any, tap_table, false,
     "depthwise on channels_last tensors: vectors along the channels, any kernel, stride and padding mode"},
    {K::DwNchwForward, "direct/dw_nchw_forward", P::Forward, F::Direct, L::Nchw, depthwise_tile, none, false,
     "depthwise 3x3 or 5x5, stride 1 or 2, zero padding: each loaded row feeds every output row of a tile"},
    {K::DenseNchwForward, "direct/dense_nchw_forward", P::Forward, F::Direct, L::Nchw, always, none, false,
     "any groups: each loaded input vector feeds a block of output channels, no workspace"},
    {K::IgemmAnyForward, "direct/igemm_any_forward", P::Forward, F::Direct, L::Any, always, igemm_panels, true,
     "implicit GEMM: weights packed into panels per call, the input gathered a tile of pixels at a time, any strides"},
    {K::Gemm1x1MatrixForward, "im2col/gemm1x1_matrix_forward", P::Forward, F::Im2col, L::Matrix, gemm1x1,
     im2col_forward, true, "1x1, unit stride, no padding: one GEMM per image and group on the tensors in place"},
    {K::ColsAnyForward, "im2col/cols_any_forward", P::Forward, F::Im2col, L::Any, always, im2col_forward, true,
     "columns gathered through the padding map, a tile of pixels at a time, then a GEMM per group"},

    {K::DwNchwGradInput, "direct/dw_nchw_grad_input", P::GradInput, F::Direct, L::Nchw, depthwise_tile_s2, none,
     false, "depthwise 3x3 or 5x5 at stride 2, zero padding: the adjoint as a gather over zero-stuffed rows"},
    {K::DwNhwcGradInput, "direct/dw_nhwc_grad_input", P::GradInput, F::Direct, L::Nhwc, dw_scatter, tap_table,
     false, "depthwise on channels_last tensors, where the adjoint is not a forward: vectors along the channels"},
    {K::FlipdwNhwcGradInput, "direct/flipdw_nhwc_grad_input", P::GradInput, F::Direct, L::Nhwc, flip_dw,
     flipped_weight_and_table, false, "unit stride, zero padding, depthwise channels_last: dw_nhwc_forward on the "
                                      "flipped kernel"},
    {K::FlipdwNchwGradInput, "direct/flipdw_nchw_grad_input", P::GradInput, F::Direct, L::Nchw, flip_dw_tile,
     flipped_weight, false, "unit stride, zero padding, depthwise 3x3 or 5x5: dw_nchw_forward on the flipped kernel"},
    {K::FlipdenseNchwGradInput, "direct/flipdense_nchw_grad_input", P::GradInput, F::Direct, L::Nchw, flip_any,
     flipped_weight, false, "unit stride, zero padding: dense_nchw_forward on the flipped, transposed kernel"},
    {K::FlipigemmAnyGradInput, "direct/flipigemm_any_grad_input", P::GradInput, F::Direct, L::Any, flip_any,
     flipped_panels, false, "unit stride, zero padding: igemm_any_forward on the flipped, transposed kernel, packed "
                            "from the weights as they lie"},
    {K::DenseNchwGradInput, "direct/dense_nchw_grad_input", P::GradInput, F::Direct, L::Nchw, always, none, false,
     "any groups, stride and padding mode: the adjoint as a scatter, a thread owning whole gx planes"},
    {K::Gemm1x1MatrixGradInput, "im2col/gemm1x1_matrix_grad_input", P::GradInput, F::Im2col, L::Matrix, gemm1x1,
     im2col_grad_input, true, "1x1, unit stride, no padding: one GEMM per image and group on the tensors in place"},
    {K::ColsAnyGradInput, "im2col/cols_any_grad_input", P::GradInput, F::Im2col, L::Any, always, im2col_grad_input,
     true, "a GEMM per group into columns, a tile of pixels at a time, scattered back through the padding map"},

    {K::DwNhwcGradWeight, "direct/dw_nhwc_grad_weight", P::GradWeight, F::Direct, L::Nhwc, depthwise_any, none,
     false, "depthwise on channels_last tensors: vectors along the channels, any kernel, stride and padding mode"},
    {K::DwNchwGradWeight, "direct/dw_nchw_grad_weight", P::GradWeight, F::Direct, L::Nchw, depthwise_tile, none,
     false, "depthwise 3x3 or 5x5, stride 1 or 2, zero padding: every tap of a channel in a register"},
    {K::CvecNchwGradWeight, "direct/cvec_nchw_grad_weight", P::GradWeight, F::Direct, L::Nchw, cvec_applies,
     cvec_bytes, true, "3x3 with whole vectors of input channels per group: outer-product updates on a padded, "
                       "packed copy"},
    {K::DenseNchwGradWeight, "direct/dense_nchw_grad_weight", P::GradWeight, F::Direct, L::Nchw, always, none,
     false, "any groups: blocks of output channels, each summed over the output runs in one order"},
    {K::Gemm1x1MatrixGradWeight, "im2col/gemm1x1_matrix_grad_weight", P::GradWeight, F::Im2col, L::Matrix, gemm1x1,
     im2col_grad_weight, true, "1x1, unit stride, no padding: one GEMM per image and group on the tensors in place"},
    {K::ColsAnyGradWeight, "im2col/cols_any_grad_weight", P::GradWeight, F::Im2col, L::Any, always,
     im2col_grad_weight, true, "a GEMM per group from gathered columns, a tile of pixels at a time, summed in order"},
};
constexpr int kRowCount = sizeof(kRows) / sizeof(kRows[0]);
static_assert(kRowCount == kNumKernels, "every kernel has one registry row");

// ---- the auto rule: which family runs a pass ----------------------------------------------------------------------

// One group's GEMM (K/groups x C/groups*kh*kw, times the pixels) is big enough for MKL's blocked GEMM to beat the
// direct kernels where those are weak (the rules below).
bool large_gemm(const ConvGeometry& g) { return g.Kg() >= 32 && (g.groups == 1 || g.Cg() >= 64); }
// Strided output rows too short for the direct grad_weight's vectors.
bool short_strided_rows(const ConvGeometry& g) { return (g.sh > 1 || g.sw > 1) && g.OW < 32; }
// A strided forward that leaves half the direct kernel's lanes or loads unused.
bool forward_strided_short(const ConvGeometry& g) {
  return (g.sh > 1 || g.sw > 1) && (g.OW < 16 || g.kh * g.kw == 1);
}
// A dense 1x1 layer with 64+ channels in and out: MKL's packed GEMM on the tensors in place wins.
bool wide_1x1_gemm(const ConvGeometry& g) {
  return im2col_in_place(g) && g.groups == 1 && g.Cg() >= 64 && g.Kg() >= 64;
}
// grad_input the direct kernels compute as a gather (each gx sum in a register) rather than a scatter.
bool grad_input_gathers(const ConvGeometry& g) { return grad_input_is_forward(g) || depthwise_tile_s2(g, 4); }

// A family, and where auto prefers one of its kernels over the first that applies, that kernel.
struct Choice {
  Family family;
  const char* why;
  KernelId prefer = KernelId::Count;
};

// A dense forward with a panel of output channels to fill: the implicit GEMM packs the weights once and reuses each
// gathered input element across 2 vectors of output channels.
bool igemm_forward(const ConvGeometry& g) { return g.groups == 1 && g.Kg() >= 16; }

// Each rule is a section of bench/DECISIONS.md, with the timings behind it.
Choice auto_family(const ConvGeometry& g, ConvPass pass, const Operands& ops) {
  // MKL's GEMM in place keeps the wide 1x1 layers, but not on channels_last input, which it reads transposed.
  if (pass == P::Forward && igemm_forward(g) && (!wide_1x1_gemm(g) || ops.in.c == 1))
    return {F::Direct, "dense forward with 16+ output channels: the implicit GEMM", K::IgemmAnyForward};
  // Its grad_input, where that is a forward over the flipped kernel (16+ input channels), the same way.
  if (pass == P::GradInput && grad_input_is_forward(g) && igemm_forward(flipped(g)) && !wide_1x1_gemm(g))
    return {F::Direct, "dense grad_input as a forward over the flipped kernel, with 16+ input channels: the "
                       "implicit GEMM", K::FlipigemmAnyGradInput};
  if (pass == P::GradWeight && cvec_applies(g, sizeof(float)))
    return {F::Direct, "cvec grad_weight: 3x3 with whole vectors of input channels per group"};
  if (g.mode != PadMode::Zeros && g.Cg() >= 64)
    return {F::Im2col, "padding mode other than zeros with 64+ channels per group: the direct kernels would add "
                       "each edge pixel's padded taps one by one"};
  if (wide_1x1_gemm(g)) return {F::Im2col, "dense 1x1 layer with 64+ channels in and out: MKL's GEMM in place"};
  if (pass == P::Forward && large_gemm(g) && forward_strided_short(g))
    return {F::Im2col, "strided forward with a large GEMM and rows under 16 wide or a 1x1 kernel"};
  if (pass == P::GradWeight && large_gemm(g) && (g.N * g.OH * g.OW < 128 || short_strided_rows(g)))
    return {F::Im2col, "grad_weight with a large GEMM and a short (under 128 positions) or strided reduction"};
  if (pass == P::GradInput && large_gemm(g) && !grad_input_gathers(g))
    return {F::Im2col, "grad_input of a strided layer with a large GEMM, which the direct kernels would scatter"};
  if (g.sw <= 2) return {F::Direct, "column stride 1 or 2: the direct kernels, with no column copy"};
  return {F::Im2col, "column stride above 2, which the direct kernels would gather lane by lane"};
}

// A depthwise call whose tensors all have unit channel stride: the Nhwc rows read it in place.
bool nhwc_call(const ConvGeometry& g, const Operands& ops) {
  return depthwise(g) && ops.in.c == 1 && ops.out.c == 1;
}

bool layout_fits(const KernelRow& r, const ConvGeometry& g, const Operands& ops) {
  if (r.layout == L::Nhwc) return nhwc_call(g, ops);
  // Such a call is never copied to NCHW; a row that reads rows takes it only if its rows are already unit-stride.
  if (r.layout == L::Nchw && nhwc_call(g, ops)) return ops.in.w == 1 && ops.out.w == 1;
  return true;
}

bool runs(const KernelRow& r, const ConvGeometry& g, const Operands& ops) {
  return r.applies(g, ops.elem_size) && layout_fits(r, g, ops);
}

const KernelRow* first_row(const ConvGeometry& g, ConvPass pass, Family family, const Operands& ops) {
  for (const KernelRow& r : kRows)
    if (r.pass == pass && r.family == family && runs(r, g, ops)) return &r;
  return nullptr;
}

}  // namespace

const KernelRow* kernel_rows(int* count) {
  *count = kRowCount;
  return kRows;
}

Plan make_plan(const ConvGeometry& g, ConvPass pass, const std::string& requested, const Operands& ops) {
  if (is_algorithm_list(requested)) return make_plan(g, pass, list_entry(requested, pass, kRows), ops);
  Choice choice{F::Direct, "requested"};
  if (requested == "im2col") choice.family = F::Im2col;
  else if (requested == "auto") {
    choice = auto_family(g, pass, ops);
    for (const KernelRow& r : kRows)
      if (r.id == choice.prefer && runs(r, g, ops)) return {&r, choice.why};
  }
  else if (requested != "direct") {
    const KernelRow* named = nullptr;
    for (const KernelRow& r : kRows)
      if (requested == r.name) named = &r;
    if (!named)
      detail::fail("unknown algorithm '", requested, "'; expected auto, im2col, direct or a kernel name ",
                   "(torchconv.kernels())");
    choice.family = named->family;
    if (named->pass == pass) {
      if (runs(*named, g, ops)) return {named, "requested"};
      std::string fits;
      for (const KernelRow& r : kRows)
        if (r.pass == pass && runs(r, g, ops)) fits += std::string(fits.empty() ? "" : ", ") + r.name;
      detail::fail("kernel ", requested, " does not apply to this call (", named->reason, "); kernels that do: ",
                   fits);
    }
  }
  // Each family ends in a row that applies to every call of its pass, so this always finds one.
  return {first_row(g, pass, choice.family, ops), choice.why};
}

const KernelRow& im2col_row(const ConvGeometry& g, ConvPass pass) {
  return *first_row(g, pass, F::Im2col, Operands{{0, 1, 0, 0}, {0, 1, 0, 0}, 4});
}

namespace {
// float32 bytes of one image's input- and output-shaped tensors; a double, as an image may pass 2^63 bytes.
double image_bytes(const ConvGeometry& g) {
  return 4.0 * (double(g.C) * double(g.H) * double(g.W) + double(g.K) * double(g.OH) * double(g.OW));
}
}  // namespace

int64_t staging_images(const ConvGeometry& g) {
  const double fit = double(kStagingBytes) / std::max(image_bytes(g), 1.0);
  return std::min(g.N, std::max<int64_t>(1, fit >= double(g.N) ? g.N : int64_t(fit)));
}

int64_t staging_bytes(const ConvGeometry& g) {
  const double bytes = image_bytes(g) * double(staging_images(g));
  return bytes < 9.0e18 ? int64_t(bytes) : INT64_MAX;
}

bool reads_in_place(Layout layout, Strides4 s, int64_t W) {
  switch (layout) {
    case L::Nchw: return s.w == 1;
    case L::Nhwc: return s.c == 1;
    case L::Matrix: return plane_is_matrix(s, W);
    case L::Any: return true;
  }
  return true;
}

}  // namespace torchconv
