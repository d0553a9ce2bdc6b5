// Run-time choice of the ISA the SIMD kernel files were compiled for (ATen's CPU_CAPABILITY scheme).
#pragma once

namespace torchconv {

// "avx512", "avx2" or "default": the best this CPU supports, unless TORCHCONV_CPU_CAPABILITY names another
// (which must be supported, or the first kernel call raises an error naming the ISAs this CPU has).
const char* cpu_capability();

}  // namespace torchconv
