// Which kernel computes a convolution: the one place that decides, for the adapters and for torchconv.explain().
#pragma once

#include <string>

#include "kernels/conv2d_im2col.h"
#include "kernels/depthwise.h"
#include "kernels/geometry.h"

namespace torchconv {

enum class Algorithm { Im2col, Direct };

struct AlgorithmChoice {
  Algorithm algorithm;
  std::string reason;
};

inline const char* algorithm_name(Algorithm a) { return a == Algorithm::Im2col ? "im2col" : "direct"; }

// `requested` is "auto", "im2col" or "direct". The auto rules:
// - depthwise (groups == C): direct. im2col runs one small GEMM per channel and gathers k*k copies of the input,
//   while the direct kernel reads each input plane once and needs no workspace. Measured (2 threads, fp32,
//   AVX-512, input 2x32x56x56, 3x3, pad 1, medians of alternating blocks): im2col 0.91 ms (4.0 GFLOP/s),
//   direct 0.07 ms (51 GFLOP/s); bench/bench.py --suite odd shows the im2col row, --suite mobilenetv2 the direct.
// - everything else: im2col, the only kernel for dense and grouped convolutions so far.
inline AlgorithmChoice choose_algorithm(const ConvGeometry& g, const std::string& requested) {
  if (requested == "im2col") return {Algorithm::Im2col, "requested"};
  if (requested == "direct") {
    if (!is_depthwise(g))
      detail::fail("algorithm 'direct' supports depthwise convolution only (groups == in_channels), got in_channels ",
                   g.C, " and groups ", g.groups);
    return {Algorithm::Direct, "requested"};
  }
  if (requested != "auto") detail::fail("unknown algorithm '", requested, "'; expected one of auto, im2col, direct");
  if (is_depthwise(g))
    return {Algorithm::Direct, "depthwise (groups == in_channels): the direct kernel reads each input plane once, "
                               "with no workspace, where im2col would run one GEMM per channel"};
  return {Algorithm::Im2col, "dense or grouped convolution: im2col + GEMM"};
}

// Bytes of scratch a call with this algorithm allocates (the direct kernels need none).
inline int64_t workspace_bytes(const ConvGeometry& g, Algorithm a, ConvPass pass, size_t elem_size) {
  return a == Algorithm::Im2col ? plan_im2col(g, pass, elem_size).bytes : 0;
}

}  // namespace torchconv
