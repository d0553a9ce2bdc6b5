// Which kernel computes a convolution: the one place that decides, for the adapters and for torchconv.explain().
#pragma once

#include <string>

#include "kernels/depthwise.h"
#include "kernels/geometry.h"

namespace torchconv {

enum class Algorithm { Im2col, Direct };

struct AlgorithmChoice {
  Algorithm algorithm;
  std::string reason;
};

inline const char* algorithm_name(Algorithm a) { return a == Algorithm::Im2col ? "im2col" : "direct"; }

// `requested` is "auto", "im2col" or "direct". The auto rules, with the bench/ numbers behind them
// (python bench/bench.py --suite mobilenetv2, 2 threads, fp32 forward; see README):
// - depthwise (groups == C): direct. im2col runs one small GEMM per channel and gathers k*k copies of the input,
//   while the direct kernel reads each input plane once and needs no workspace.
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

}  // namespace torchconv
