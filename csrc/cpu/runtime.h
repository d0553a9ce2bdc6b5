// What the torch-free kernels need from a runtime: a parallel-for on torch's thread pool, and a GEMM.
// Declared here, defined by the backend (cpu/runtime.cpp), so kernel files never include a torch header.
#pragma once

#include <cstdint>

namespace torchconv {

using RangeFn = void (*)(int64_t begin, int64_t end, void* ctx);

// Runs fn over [begin, end) in chunks of at least `grain` on torch's intra-op pool (torch.set_num_threads governs it).
void parallel_for_impl(int64_t begin, int64_t end, int64_t grain, RangeFn fn, void* ctx);

template <typename F>
inline void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  if (begin >= end) return;
  parallel_for_impl(begin, end, grain,
                    [](int64_t b, int64_t e, void* ctx) { (*static_cast<const F*>(ctx))(b, e); },
                    const_cast<void*>(static_cast<const void*>(&f)));
}

// Threads in torch's intra-op pool (the kernels size their work items by it).
int max_threads();

// Row-major C[m, n] = op(A)[m, k] · op(B)[k, n], where op transposes when trans_* is set.
// Must be called outside parallel regions. k == 0 writes zeros.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
          int64_t ldb, T* c, int64_t ldc);

}  // namespace torchconv
