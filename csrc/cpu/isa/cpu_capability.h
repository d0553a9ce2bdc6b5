// Run-time choice of the ISA the SIMD kernel files were compiled for (ATen's CPU_CAPABILITY scheme).
#pragma once

namespace torchconv {

// "avx512", "avx2" or "default": the best this CPU supports, unless TORCHCONV_CPU_CAPABILITY names another
// (which must be supported, or the first kernel call raises an error naming the ISAs this CPU has).
const char* cpu_capability();

// The fp32 FMA throughput of that ISA's vector code on `threads` threads, in GFLOP/s (best of 3): the peak
// bench/bench.py measures the kernels against.
double fma_peak_gflops(int threads);

}  // namespace torchconv
