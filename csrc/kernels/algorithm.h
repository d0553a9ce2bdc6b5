// Which kernel computes a convolution: the one place that decides, for the adapters and for torchconv.explain().
#pragma once

#include <string>

#include "kernels/conv2d_im2col.h"
#include "kernels/direct.h"
#include "kernels/geometry.h"
#include "kernels/runtime.h"

namespace torchconv {

enum class Algorithm { Im2col, Direct };

struct AlgorithmChoice {
  Algorithm algorithm;
  std::string reason;
};

inline const char* algorithm_name(Algorithm a) { return a == Algorithm::Im2col ? "im2col" : "direct"; }

// Whether one group's GEMM (K/groups x C/groups*kh*kw, times the pixels) is big enough for MKL's blocked GEMM to
// beat the direct kernels where those are weak (strided short rows, scatters, short reductions: the rules below).
inline bool large_gemm(const ConvGeometry& g) { return g.Kg() >= 32 && (g.groups == 1 || g.Cg() >= 64); }

// Whether a strided layer's output rows are short for the direct grad_weight's vectors: the flat walk, which packs
// rows narrower than two vectors into full ones, needs unit stride, so at stride 2 a 28-wide row fills 28 of 32
// lanes and a 7-wide one 7 of 16, each vector loaded as two loads and a permute (32: two AVX-512 float vectors).
inline bool short_strided_rows(const ConvGeometry& g) { return (g.sh > 1 || g.sw > 1) && g.OW < 32; }

// Whether a strided forward is one the direct kernel loses to the GEMM: output rows shorter than one AVX-512 float
// vector (half its lanes or more empty), or a 1x1 kernel, whose stride-2 pair tile uses half of what it loads.
inline bool forward_strided_short(const ConvGeometry& g) {
  return (g.sh > 1 || g.sw > 1) && (g.OW < 16 || g.kh * g.kw == 1);
}

// Whether a 1x1 layer is a dense GEMM with 64+ input and 64+ output channels, which im2col runs in place
// (im2col_in_place) as one MKL GEMM per image: MKL's packed kernel then beats the direct one. With fewer channels
// (MobileNet's 16->96, 24->144, 144->32) the GEMM is too thin for MKL and the direct kernel wins.
inline bool wide_1x1_gemm(const ConvGeometry& g) {
  return im2col_in_place(g) && g.groups == 1 && g.Cg() >= 64 && g.Kg() >= 64;
}

// `requested` is "auto", "im2col" or "direct"; both kernels run every geometry. The auto rule, per pass:
// - forward, column stride 1 or 2: direct. It reads each input vector once for a block of output channels and rows,
//   with no workspace, where im2col gathers k*k copies of the input and (for groups) runs one small GEMM per group.
//   Measured (fp32, AVX-512, 2 threads, batch 1, medians of alternating blocks; bench/bench.py --algorithm
//   direct|im2col): ResNet-50 layers direct 97-179 GFLOP/s vs im2col 62-126. bench/bench.py --suite resnext:
//   im2col 0.24x oneDNN (geomean), direct 1.53x; depthwise 2x32x56x56 3x3: im2col 4.0 GFLOP/s, direct 25-51.
// - forward with a large GEMM, stride, and rows under 16 wide or a 1x1 kernel: im2col. Forward alone (ms, 2
//   threads, batch 1, alternating, medians; direct vs im2col): 3x3/2 256@28 1.96 vs 1.67, 512@14 4.34 vs 2.20,
//   1x1/2 256->512@56 1.53 vs 1.25; with the stride-2 pair tile direct wins on rows of 28 and more: 3x3/2 128@56
//   1.56 vs 1.83, 64@112 1.72 vs 2.91, the 7x7/2 stem 2.00 vs 2.97.
// - a dense 1x1 layer at unit stride without padding, 64+ channels in and out (wide_1x1_gemm), every pass: im2col,
//   with no column copy. Per pass (ms, alternating, medians; direct vs im2col, forward / grad_input / grad_weight),
//   2 threads, batch 1: 256->64@56 0.89 vs 0.80 / 0.90 vs 0.82 / 0.70 vs 0.63, 64->256@56 0.71 vs 0.65 / 0.73 vs
//   0.71 / 0.70 vs 0.61, 1024->256@14 0.63 vs 0.59 / 0.95 vs 0.77 / 0.82 vs 0.79, 320->1280@7 0.32 vs 0.32 / 0.62
//   vs 0.32 / 0.64 vs 0.30; 1 thread: 1.41 vs 1.18 / 1.54 vs 1.30 / 1.38 vs 1.20 (256->64). Batch 8: 256->64@56
//   8.87 vs 7.05 / 6.92 vs 6.36 / 12.04 vs 6.18, 128->512@28 4.60 vs 5.12 / 6.30 vs 5.63 / 5.86 vs 5.01; the sum
//   of the three passes favours im2col on 5 of 7 ResNet shapes at batch 1-8 (1024->256@14 at batch 2 and 4 does
//   not: 5.1 vs 5.7, 10.2 vs 11.5 ms). Thin layers stay direct, batch 1: 16->96@112 0.27 vs 0.39 / 0.25 vs 0.39 /
//   0.27 vs 0.30, 24->144@56 0.18 vs 0.22, 144->32@28 0.059 vs 0.083 (forward); so do 2 groups (128->128@28 0.09
//   vs 0.27), where each GEMM is small.
// - larger column strides (patchify stems): im2col, as the direct kernel then reads lanes one by one.
// - a padding mode other than zeros with 64 or more input channels per group: im2col. The direct kernel adds the
//   padded taps at the edge pixels in a scalar pass whose cost grows with the channels. python bench/bench.py,
//   2x64x28x28 3x3 reflect, two runs of one session: direct 1.90 ms (0.36x oneDNN), then with this rule im2col
//   1.55 ms (0.46x). The 1x7 circular layer (32 channels) stays direct: 0.39 ms, where im2col took 0.48 ms in the
//   previous session's run.
// - grad_weight of a 3x3 kernel whose groups hold whole float vectors of input channels (16 or more, by 16; dense
//   layers, ResNeXt's 512@14 and 1024@7 stages): direct, first of the rules, in any padding mode. Its kernel
//   (grad_weight_by_channel) has input channels along the vector and no edges, and beats im2col on every such
//   layer measured (ms, alternating, medians; direct vs im2col): 2 threads, batch 1: 3x3 64@56 1.19 vs 2.31, 128@28
//   1.21 vs 1.70, 256@14 1.30 vs 1.65, 512@7 1.79 vs 2.41, 3x3/2 128@56 1.35 vs 1.78, 3x3/2 256@28 1.55 vs 2.02,
//   3x3/2 512@14 2.14 vs 3.13, g32 512@14 0.19 vs 0.87, 3x3 reflect 64@28 0.33 vs 0.57; batch 8: 512@7 10.7 vs
//   12.3, 3x3/2 128@56 10.4 vs 13.8, 3x3/2 512@14 11.5 vs 12.5, reflect 64@28 2.5 vs 4.3; 1 thread, batch 1: 512@7
//   3.74 vs 4.28, 3x3/2 256@28 2.87 vs 3.02. (It also beats the walk below: 512@14 g32 0.37 vs 0.52 ms, 3x3 256@14
//   2.73 vs 4.23, 1 thread.)
// - grad_weight otherwise: direct, except with a large GEMM and either a short reduction (fewer than 128 output
//   positions over the batch: each block of accumulators ends in horizontal sums that then cost as much as the
//   reduction) or short strided rows (short_strided_rows). Per-pass times from before the rule above, grad_weight
//   alone (ms, 2 threads, batch 1, alternating, medians; direct vs im2col): 3x3 512@7 4.58 vs 2.68, 3x3/2 128@56
//   3.22 vs 1.88; while direct wins 3x3 64@56 1.75 vs 3.82, 3x3 256@14 2.19 vs 2.98, 1x1 256->64@56 0.96 vs 1.35,
//   the stride-2 stem (3 channels) 2.60 vs 3.77, g=8 256@28 0.82 vs 1.91; 1x1 1024->256@14 ties (0.82 vs 0.76).
// - grad_input with a large GEMM that the direct kernel would scatter (stride 2): im2col. 3x3/2 128@56 16.3 vs
//   2.2, stem 17.0 vs 5.2; the gather form stays direct (3x3 64@56 1.6 vs 4.1), as does the grouped stride-2 3x3
//   (g=32 256@56/2, 1.2 vs 3.0), whose GEMM is small.
inline AlgorithmChoice choose_algorithm(const ConvGeometry& g, ConvPass pass, const std::string& requested) {
  if (requested == "im2col") return {Algorithm::Im2col, "requested"};
  if (requested == "direct") return {Algorithm::Direct, "requested"};
  if (requested != "auto") detail::fail("unknown algorithm '", requested, "'; expected one of auto, im2col, direct");
  if (pass == ConvPass::GradWeight && grad_weight_by_channel_applies(g, sizeof(float)))
    return {Algorithm::Direct, "3x3 grad_weight with whole vectors of input channels per group: the direct kernel "
                               "with input channels along the vector (outer-product updates on a padded copy)"};
  if (g.mode != PadMode::Zeros && g.Cg() >= 64)
    return {Algorithm::Im2col, "padding mode other than zeros with 64 or more channels per group: im2col + GEMM "
                               "(the direct kernel would add the padded taps of every edge pixel one by one)"};
  if (wide_1x1_gemm(g))
    return {Algorithm::Im2col, "dense 1x1 layer with 64+ channels in and out: one GEMM per image on the tensors in "
                               "place (MKL's packed kernel beats the direct one there)"};
  if (pass == ConvPass::Forward && large_gemm(g) && forward_strided_short(g))
    return {Algorithm::Im2col, "strided forward with a large GEMM and output rows under 16 wide or a 1x1 kernel: "
                               "im2col + GEMM (the direct kernel would leave half its lanes or loads unused)"};
  if (pass == ConvPass::GradWeight && large_gemm(g) && (g.N * g.OH * g.OW < 128 || short_strided_rows(g)))
    return {Algorithm::Im2col, "grad_weight with a large GEMM and a short (under 128 positions) or strided "
                               "reduction: im2col + GEMM (the direct kernel's sums would be short or its loads split)"};
  if (pass == ConvPass::GradInput && large_gemm(g) && !direct_grad_input_gathers(g))
    return {Algorithm::Im2col, "grad_input of a strided layer with a large GEMM: im2col + GEMM (the direct kernel "
                               "would scatter into the input gradient once per tap)"};
  if (g.sw <= 2)
    return {Algorithm::Direct, "column stride 1 or 2: the direct kernel reads each input vector once for a block "
                               "of output channels and rows, with no workspace"};
  return {Algorithm::Im2col, "column stride above 2: im2col + GEMM (the direct kernel would gather lane by lane)"};
}

// Bytes of workspace the adapter allocates for a call with this algorithm: im2col's plan (the direct kernels
// allocate their own scratch, if any).
inline int64_t im2col_workspace_bytes(const ConvGeometry& g, Algorithm a, ConvPass pass, size_t elem_size) {
  return a == Algorithm::Im2col ? plan_im2col(g, pass, elem_size).bytes : 0;
}

// All the scratch a call allocates, as torchconv.explain reports it: im2col's workspace, or for the direct kernels
// none, except grad_weight_by_channel's packed plane and accumulators on each thread.
inline int64_t workspace_bytes(const ConvGeometry& g, Algorithm a, ConvPass pass, size_t elem_size) {
  if (a == Algorithm::Direct && pass == ConvPass::GradWeight && grad_weight_by_channel_applies(g, elem_size))
    return max_threads() * grad_weight_by_channel_bytes(g);
  return im2col_workspace_bytes(g, a, pass, elem_size);
}

}  // namespace torchconv
