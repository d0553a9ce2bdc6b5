#include "cpu/isa/cpu_capability.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cpu/kernels.h"

namespace torchconv {

// One table and one peak loop per ISA, each in its inline namespace (cpu/direct/table.cpp, fma_peak.cpp).
#define TORCHCONV_ISA(isa)                                        \
  namespace isa {                                                 \
  extern const KernelFns* const kernel_table[kNumKernels];         \
  double fma_peak_gflops(int threads);                            \
  }
TORCHCONV_ISA(cpu_default)
TORCHCONV_ISA(cpu_avx2)
TORCHCONV_ISA(cpu_avx512)
#undef TORCHCONV_ISA

namespace {

bool supported(const std::string& isa) {
  __builtin_cpu_init();
  if (isa == "default") return true;
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  // The AVX-512 copy is built with F, VL, BW and DQ (Skylake-X and later, Zen 4).
  if (isa == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("bmi2") && supported("avx2");
  return false;
}

std::string choose() {
  if (const char* env = std::getenv("TORCHCONV_CPU_CAPABILITY")) {
    const std::string isa = env;
    if (isa != "default" && isa != "avx2" && isa != "avx512")
      throw std::runtime_error("torchconv: TORCHCONV_CPU_CAPABILITY='" + isa +
                               "' is not one of default, avx2, avx512");
    if (!supported(isa))
      throw std::runtime_error("torchconv: TORCHCONV_CPU_CAPABILITY='" + isa + "' is not supported by this CPU" +
                               " (avx2: " + (supported("avx2") ? "yes" : "no") +
                               ", avx512: " + (supported("avx512") ? "yes" : "no") + ")");
    return isa;
  }
  return supported("avx512") ? "avx512" : supported("avx2") ? "avx2" : "default";
}

}  // namespace

const char* cpu_capability() {
  static const std::string isa = choose();  // a throw here is retried on the next call
  return isa.c_str();
}

const KernelFns& kernel_fns(KernelId id) {
  static const KernelFns* const* table = [] {
    const std::string isa = cpu_capability();
    return isa == "avx512" ? cpu_avx512::kernel_table : isa == "avx2" ? cpu_avx2::kernel_table : cpu_default::kernel_table;
  }();
  return *table[static_cast<int>(id)];
}

double fma_peak_gflops(int threads) {
  const std::string isa = cpu_capability();
  return isa == "avx512" ? cpu_avx512::fma_peak_gflops(threads)
         : isa == "avx2" ? cpu_avx2::fma_peak_gflops(threads)
                         : cpu_default::fma_peak_gflops(threads);
}

}  // namespace torchconv
