// Which kernel computes a convolution: the one place that decides, for the adapters and for torchconv.explain().
#pragma once

#include <string>

#include "kernels/conv2d_im2col.h"
#include "kernels/direct.h"
#include "kernels/geometry.h"

namespace torchconv {

enum class Algorithm { Im2col, Direct };

struct AlgorithmChoice {
  Algorithm algorithm;
  std::string reason;
};

inline const char* algorithm_name(Algorithm a) { return a == Algorithm::Im2col ? "im2col" : "direct"; }

// `requested` is "auto", "im2col" or "direct"; both kernels run every geometry. The auto rule:
// - column stride 1 or 2: direct. It reads each input vector once for a block of output channels and rows, with
//   no workspace, where im2col gathers k*k copies of the input and (for groups) runs one small GEMM per group.
//   Measured (fp32, AVX-512, 2 threads, batch 1, medians of alternating blocks; bench/bench.py --algorithm
//   direct|im2col): ResNet-50 layers direct 97-179 GFLOP/s vs im2col 62-126 (each layer; the stride-2 3x3 ties,
//   2.37 vs 2.22 ms). bench/bench.py --suite resnext: im2col 0.24x oneDNN (geomean), direct 1.53x; depthwise
//   2x32x56x56 3x3: im2col 4.0 GFLOP/s, direct 25-51 GFLOP/s.
// - larger column strides (patchify stems): im2col, as the direct kernel then reads lanes one by one.
// - a padding mode other than zeros with 64 or more input channels per group: im2col. The direct kernel adds the
//   padded taps at the edge pixels in a scalar pass whose cost grows with the channels. python bench/bench.py,
//   2x64x28x28 3x3 reflect, two runs of one session: direct 1.90 ms (0.36x oneDNN), then with this rule im2col
//   1.55 ms (0.46x). The 1x7 circular layer (32 channels) stays direct: 0.39 ms, where im2col took 0.48 ms in the
//   previous session's run.
inline AlgorithmChoice choose_algorithm(const ConvGeometry& g, const std::string& requested) {
  if (requested == "im2col") return {Algorithm::Im2col, "requested"};
  if (requested == "direct") return {Algorithm::Direct, "requested"};
  if (requested != "auto") detail::fail("unknown algorithm '", requested, "'; expected one of auto, im2col, direct");
  if (g.mode != PadMode::Zeros && g.Cg() >= 64)
    return {Algorithm::Im2col, "padding mode other than zeros with 64 or more channels per group: im2col + GEMM "
                               "(the direct kernel would add the padded taps of every edge pixel one by one)"};
  if (g.sw <= 2)
    return {Algorithm::Direct, "column stride 1 or 2: the direct kernel reads each input vector once for a block "
                               "of output channels and rows, with no workspace"};
  return {Algorithm::Im2col, "column stride above 2: im2col + GEMM (the direct kernel would gather lane by lane)"};
}

// Bytes of scratch a call with this algorithm allocates (the direct kernels need none).
inline int64_t workspace_bytes(const ConvGeometry& g, Algorithm a, ConvPass pass, size_t elem_size) {
  return a == Algorithm::Im2col ? plan_im2col(g, pass, elem_size).bytes : 0;
}

}  // namespace torchconv
