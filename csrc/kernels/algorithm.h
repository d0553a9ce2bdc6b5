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

// `requested` is "auto", "im2col" or "direct"; both kernels run every geometry. The auto rule (MEASURED below):
// - grouped with few input channels per group: direct. im2col runs one small GEMM per group on a gathered copy of
//   k*k input planes, where the direct kernel reads each input vector once for a block of output channels.
// - everything else: im2col.
inline AlgorithmChoice choose_algorithm(const ConvGeometry& g, const std::string& requested) {
  if (requested == "im2col") return {Algorithm::Im2col, "requested"};
  if (requested == "direct") return {Algorithm::Direct, "requested"};
  if (requested != "auto") detail::fail("unknown algorithm '", requested, "'; expected one of auto, im2col, direct");
  if (g.groups > 1 && g.Cg() <= 16)
    return {Algorithm::Direct, "grouped with few input channels per group: the direct kernel reads each input "
                               "vector once for a block of output channels, with no workspace; im2col would run "
                               "one small GEMM per group"};
  return {Algorithm::Im2col, "dense or wide groups: im2col + GEMM"};
}

// Bytes of scratch a call with this algorithm allocates (the direct kernels need none).
inline int64_t workspace_bytes(const ConvGeometry& g, Algorithm a, ConvPass pass, size_t elem_size) {
  return a == Algorithm::Im2col ? plan_im2col(g, pass, elem_size).bytes : 0;
}

}  // namespace torchconv
