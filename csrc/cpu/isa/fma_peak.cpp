// The peak the kernels are measured against (bench/bench.py's % of peak column), compiled per ISA as the kernels
// are, so it measures the same vector code.
#include <time.h>

#include "cpu/isa/simd.h"
#include "cpu/runtime.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {

using simd::Vec;

// Each thread runs independent chains of FMAs (12: more than the FMA latency times the issue width), so the loop
// is bound by FMA throughput alone; the slowest thread's time gives the rate.
double fma_peak_gflops(int threads) {
  constexpr int kChains = 12;
  constexpr int64_t kIters = 20'000'000 / Vec<float>::size;
  double slowest = 0, sink = 0;
  for (int rep = 0; rep < 3; ++rep) {  // the best of 3, as a peak should be
    double seconds[64] = {};
    float sums[64] = {};
    const int n = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        timespec start, stop;  // not std::chrono: its templates would be instantiated here with this file's ISA
        clock_gettime(CLOCK_MONOTONIC, &start);
        Vec<float> acc[kChains];
        for (int c = 0; c < kChains; ++c) acc[c] = Vec<float>::set1(float(c) * 1e-3f + float(t));
        const Vec<float> m = Vec<float>::set1(0.9999f), a = Vec<float>::set1(1e-4f);
        for (int64_t i = 0; i < kIters; ++i)
#pragma GCC unroll 12
          for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], m, a);
        Vec<float> s = acc[0];
        for (int c = 1; c < kChains; ++c) s = s + acc[c];
        sums[t] = s.sum();
        clock_gettime(CLOCK_MONOTONIC, &stop);
        seconds[t] = double(stop.tv_sec - start.tv_sec) + 1e-9 * double(stop.tv_nsec - start.tv_nsec);
      }
    });
    double worst = 0;
    for (int t = 0; t < n; ++t) worst = seconds[t] > worst ? seconds[t] : worst, sink += sums[t];
    const double gflops = 2.0 * kChains * Vec<float>::size * kIters * n / worst / 1e9;
    slowest = gflops > slowest ? gflops : slowest;
  }
  return sink == -1.0 ? 0 : slowest;  // sink keeps the loop's result alive
}

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
