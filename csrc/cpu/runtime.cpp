// The runtime the kernels declare in kernels/runtime.h, provided by torch through the stable ABI.
#include "kernels/runtime.h"

#include <algorithm>

#include "stable_compat.h"

namespace torchconv {

void parallel_for_impl(int64_t begin, int64_t end, int64_t grain, RangeFn fn, void* ctx) {
  // at::parallel_for underneath: torch's OpenMP pool, torch.set_num_threads, and no nesting inside a parallel region.
  torch::stable::parallel_for(begin, end, grain, [&](int64_t b, int64_t e) { fn(b, e, ctx); });
}

int max_threads() { return static_cast<int>(torch::stable::get_num_threads()); }

// For now the GEMM is torch's (MKL behind aten::mm): the operands are wrapped in place, never copied.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
          int64_t ldb, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  constexpr auto dtype = compat::scalar_type_of<T>();
  const int64_t a_strides[2] = {trans_a ? 1 : lda, trans_a ? lda : 1};
  const int64_t b_strides[2] = {trans_b ? 1 : ldb, trans_b ? ldb : 1};
  const int64_t c_strides[2] = {ldc, 1};
  auto ta = compat::wrap(const_cast<T*>(a), {m, k}, a_strides, dtype);
  auto tb = compat::wrap(const_cast<T*>(b), {k, n}, b_strides, dtype);
  auto tc = compat::wrap(c, {m, n}, c_strides, dtype);
  compat::mm_out(tc, ta, tb);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t,
                          float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t, const double*, int64_t,
                           double*, int64_t);

}  // namespace torchconv
