// torchconv._C: loading it registers the ops (the static initializers of ops/ and cpu/). It carries no tensors;
// it reports build information, the kernel registry (torchconv.kernels) and the plan (torchconv.explain).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cpu/isa/cpu_capability.h"
#include "cpu/plan.h"
#include "cpu/runtime.h"
#include "cuda/emulation/emulator.h"
#include "cuda/plan.h"

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

torchconv::Strides4 strides_of(int64_t C, int64_t H, int64_t W, bool channels_last) {
  if (channels_last) return {H * W * C, 1, W * C, C};
  return {C * H * W, H * W, W, 1};
}

// The plan for this pass of this convolution, on contiguous (or channels_last) tensors of dtype, as the adapter
// makes it (cpu/adapter.h): a half dtype is planned for float32 copies of a chunk of the batch. Returns (family,
// kernel, why this family, what the kernel is for, workspace bytes: the kernel's and the float32 copies').
py::tuple explain(const std::string& pass, const Sizes& input_size, const Sizes& weight_size, const Sizes& stride,
                  const Sizes& padding, const Sizes& dilation, int64_t groups, const std::string& padding_mode,
                  const std::string& algorithm, bool channels_last, const std::string& dtype) {
  const bool half = dtype == "bfloat16" || dtype == "float16";
  if (!half && dtype != "float32" && dtype != "float64")
    throw std::invalid_argument("unsupported dtype " + dtype + "; supported: float32, float64, bfloat16, float16");
  auto g = geometry(input_size, weight_size, stride, padding, dilation, groups, padding_mode);
  const int64_t staging = half ? torchconv::staging_bytes(g) : 0;
  if (half) g.N = torchconv::staging_images(g);
  const size_t elem = dtype == "float64" ? 8 : 4;
  const torchconv::Operands ops{strides_of(g.C, g.H, g.W, channels_last), strides_of(g.K, g.OH, g.OW, channels_last),
                                elem};
  const auto plan = torchconv::make_plan(g, parse_pass(pass), algorithm, ops);
  const auto& row = *plan.row;
  return py::make_tuple(torchconv::family_name(row.family), row.name, plan.why, row.reason,
                        row.workspace(g, elem) + staging);
}

// Every row of a registry, in the plan's order.
template <typename Row>
py::list rows_of(const Row* rows, int n, const char* device) {
  py::list out;
  for (int i = 0; i < n; ++i) {
    py::dict d;
    d["name"] = rows[i].name;
    d["pass"] = torchconv::kPassNames[static_cast<int>(rows[i].pass)];
    d["family"] = torchconv::family_name(rows[i].family);
    d["layout"] = torchconv::kLayoutNames[static_cast<int>(rows[i].layout)];
    d["device"] = device;
    d["reason"] = rows[i].reason;
    out.append(d);
  }
  return out;
}
py::list kernels(const std::string& device) {
  int n = 0;
  if (device == "cpu") {
    const torchconv::KernelRow* rows = torchconv::kernel_rows(&n);
    return rows_of(rows, n, "cpu");
  }
  if (device != "cuda") throw std::invalid_argument("unknown device '" + device + "'; expected cpu or cuda");
  const torchconv::cuda::CudaRow* rows = torchconv::cuda::cuda_rows(&n);
  return rows_of(rows, n, "cuda");
}

// The CUDA plan for contiguous (or channels_last) tensors: (family, kernel, why, reason, workspace bytes: the
// im2col family's columns and GEMM rows for one chunk of the batch).
py::tuple explain_cuda(const std::string& pass, const Sizes& input_size, const Sizes& weight_size,
                       const Sizes& stride, const Sizes& padding, const Sizes& dilation, int64_t groups,
                       const std::string& padding_mode, const std::string& algorithm, bool channels_last,
                       const std::string& dtype) {
  if (dtype != "float32" && dtype != "float64" && dtype != "bfloat16" && dtype != "float16")
    throw std::invalid_argument("unsupported dtype " + dtype + "; supported: float32, float64, bfloat16, float16");
  const size_t elem = dtype == "float64" ? 8 : dtype == "float32" ? 4 : 2;
  const auto g = geometry(input_size, weight_size, stride, padding, dilation, groups, padding_mode);
  const torchconv::Operands ops{strides_of(g.C, g.H, g.W, channels_last), strides_of(g.K, g.OH, g.OW, channels_last),
                                elem};
  const auto plan = torchconv::cuda::make_cuda_plan(g, parse_pass(pass), algorithm, ops, elem == 8 ? 8 : 4);
  const auto& row = *plan.row;
  const int64_t images = torchconv::cuda::column_images(g, elem);
  const double columns = row.family == torchconv::Family::Im2col && g.N > 0
                             ? double(elem) * double(images) * double(g.OH * g.OW) * double(g.col_rows() + g.K) : 0;
  const int64_t bytes = columns < 9.0e18 ? int64_t(columns) : INT64_MAX;
  return py::make_tuple(torchconv::family_name(row.family), row.name, plan.why, row.reason, bytes);
}

// torchconv.testing.cuda_emulation: switches the CPU ops to the emulated CUDA backend and records its launches.
void set_emulation(bool on, int64_t column_bytes, bool plant_missing_barrier) {
  namespace cu = torchconv::cuda;
  cu::emulation_active() = on;
  torchconv::emu::recording() = on;
  if (on) torchconv::emu::launches().clear();  // kept after the context, for .launches
  cu::column_budget() = column_bytes > 0 ? column_bytes : cu::kColumnBytes;
  cu::plant_missing_barrier() = plant_missing_barrier;
}
py::list emulated_launches() {
  py::list out;
  for (const auto& r : torchconv::emu::launches()) out.append(py::make_tuple(r.name, r.grid, r.block, r.shared_bytes));
  return out;
}

#ifdef TORCHCONV_WITH_CUDA
py::list cuda_architectures() {
  py::list out;
  const std::string archs = TORCHCONV_CUDA_ARCHS;
  for (size_t start = 0, end; start <= archs.size(); start = end + 1) {
    end = archs.find(' ', start);
    if (end == std::string::npos) end = archs.size();
    if (end > start) out.append(archs.substr(start, end - start));
  }
  return out;
}
#endif

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "torchconv native library: loading it registers torch.ops.torchconv.*";
  m.attr("__version__") = TORCHCONV_VERSION;
  m.attr("git_revision") = TORCHCONV_GIT_REVISION;
  m.attr("built_with_torch") = TORCHCONV_TORCH_VERSION;
#ifdef TORCHCONV_WITH_CUDA
  m.attr("cuda_compiled") = true;
  m.attr("cuda_architectures") = cuda_architectures();
  m.attr("cuda_version") = TORCHCONV_CUDA_VERSION;
#else
  m.attr("cuda_compiled") = false;
  m.attr("cuda_architectures") = py::list();
  m.attr("cuda_version") = py::none();
#endif
  m.def("cpu_isa", [] { return std::string(torchconv::cpu_capability()); },
        "The ISA whose copy of the SIMD kernels runs: avx512, avx2 or default (TORCHCONV_CPU_CAPABILITY overrides).");
  m.def("cpu_supports", [](const std::string& feature) {
    __builtin_cpu_init();
    if (feature == "avx2") return bool(__builtin_cpu_supports("avx2"));
    if (feature == "avx512f") return bool(__builtin_cpu_supports("avx512f"));
    throw std::invalid_argument("unknown feature '" + feature + "'; expected avx2 or avx512f");
  });
  m.def("fma_peak_gflops", &torchconv::fma_peak_gflops, py::arg("threads"),
        "fp32 FMA GFLOP/s of the selected ISA's vector code on `threads` threads (best of 3 runs).");
  m.def("num_threads", [] { return torchconv::max_threads(); },
        "Threads of torch's intra-op pool, which every torchconv parallel loop runs on.");
  m.def("explain", &explain, py::arg("pass_"), py::arg("input_size"), py::arg("weight_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("padding_mode"), py::arg("algorithm"),
        py::arg("channels_last"), py::arg("dtype"),
        "(family, kernel, why, kernel's reason, workspace bytes) of the plan for this pass and geometry.");
  m.def("kernels", &kernels, py::arg("device"),
        "Every kernel of a device's registry (cpu or cuda), in the plan's order of preference.");
  m.def("explain_cuda", &explain_cuda, py::arg("pass_"), py::arg("input_size"), py::arg("weight_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("padding_mode"),
        py::arg("algorithm"), py::arg("channels_last"), py::arg("dtype"),
        "(family, kernel, why, kernel's reason, workspace bytes) of the CUDA plan for this pass and geometry.");
  m.def("_set_cuda_emulation", &set_emulation, py::arg("on"), py::arg("column_bytes"),
        py::arg("plant_missing_barrier"));
  m.def("_emulated_launches", &emulated_launches, "(kernel, grid, block, shared bytes) of each emulated launch.");
}
