// torchconv._C: loading it registers the ops (the static initializers of ops/ and cpu/). It carries no tensors;
// it reports build information, the algorithm choice (torchconv.explain) and the workspace planner (bench/).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kernels/algorithm.h"
#include "kernels/cpu_capability.h"

namespace py = pybind11;

namespace {

using Sizes = std::vector<int64_t>;

torchconv::ConvGeometry geometry(const Sizes& input_size, const Sizes& weight_size, const Sizes& stride,
                                 const Sizes& padding, const Sizes& dilation, int64_t groups,
                                 const std::string& padding_mode) {
  if (input_size.size() != 4 || weight_size.size() != 4 || stride.size() != 2 || padding.size() != 4 ||
      dilation.size() != 2)
    throw std::invalid_argument("expected 4 input sizes, 4 weight sizes, 2 strides, 4 paddings, 2 dilations");
  return torchconv::make_geometry(input_size.data(), weight_size.data(), stride.data(), padding.data(),
                                  dilation.data(), groups, padding_mode);
}

torchconv::ConvPass parse_pass(const std::string& pass) {
  using torchconv::ConvPass;
  if (pass == "forward") return ConvPass::Forward;
  if (pass == "grad_input") return ConvPass::GradInput;
  if (pass == "grad_weight") return ConvPass::GradWeight;
  throw std::invalid_argument("unknown pass '" + pass + "'; expected forward, grad_input or grad_weight");
}

// What algorithm="auto" (or the requested one) runs for this pass of this convolution, and why.
std::pair<std::string, std::string> explain(const std::string& pass, const Sizes& input_size,
                                            const Sizes& weight_size, const Sizes& stride, const Sizes& padding,
                                            const Sizes& dilation, int64_t groups, const std::string& padding_mode,
                                            const std::string& algorithm) {
  const auto g = geometry(input_size, weight_size, stride, padding, dilation, groups, padding_mode);
  const auto choice = torchconv::choose_algorithm(g, parse_pass(pass), algorithm);
  return {torchconv::algorithm_name(choice.algorithm), choice.reason};
}

int64_t workspace_bytes(const std::string& pass, const Sizes& input_size, const Sizes& weight_size,
                        const Sizes& stride, const Sizes& padding, const Sizes& dilation, int64_t groups,
                        const std::string& padding_mode, const std::string& algorithm, int64_t elem_size) {
  const auto g = geometry(input_size, weight_size, stride, padding, dilation, groups, padding_mode);
  const auto p = parse_pass(pass);
  return torchconv::workspace_bytes(g, torchconv::choose_algorithm(g, p, algorithm).algorithm, p,
                                    static_cast<size_t>(elem_size));
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "torchconv native library: loading it registers torch.ops.torchconv.*";
  m.attr("__version__") = TORCHCONV_VERSION;
  m.attr("cuda_compiled") = false;
  m.def("cpu_isa", [] { return std::string(torchconv::cpu_capability()); },
        "The ISA whose copy of the SIMD kernels runs: avx512, avx2 or default (TORCHCONV_CPU_CAPABILITY overrides).");
  m.def("cpu_supports", [](const std::string& feature) {
    __builtin_cpu_init();
    if (feature == "avx2") return bool(__builtin_cpu_supports("avx2"));
    if (feature == "avx512f") return bool(__builtin_cpu_supports("avx512f"));
    throw std::invalid_argument("unknown feature '" + feature + "'; expected avx2 or avx512f");
  });
  m.def("fma_peak_gflops", [](int threads) { return torchconv::direct_kernels().fma_peak_gflops(threads); },
        py::arg("threads"), "fp32 FMA GFLOP/s of the selected ISA's vector code on `threads` threads (best of 3 runs).");
  m.def("num_threads", [] { return torchconv::max_threads(); },
        "Threads of torch's intra-op pool, which every torchconv parallel loop runs on.");
  m.def("workspace_bytes", &workspace_bytes, py::arg("pass_"), py::arg("input_size"), py::arg("weight_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("padding_mode"),
        py::arg("algorithm"), py::arg("elem_size"),
        "Bytes of scratch one call allocates (im2col: columns, a tile, index maps; direct: none).");
  m.def("explain", &explain, py::arg("pass_"), py::arg("input_size"), py::arg("weight_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("padding_mode"), py::arg("algorithm"),
        "(algorithm, reason) that this pass (forward, grad_input, grad_weight) would run for this geometry.");
}
