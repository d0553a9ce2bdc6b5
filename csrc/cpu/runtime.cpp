// The runtime the kernels declare in cpu/runtime.h, provided by torch through the stable ABI.
#include "cpu/runtime.h"

#include <algorithm>

#include "ops/stable_compat.h"

namespace torchconv {

void parallel_for_impl(int64_t begin, int64_t end, int64_t grain, RangeFn fn, void* ctx) {
  // at::parallel_for underneath: torch's OpenMP pool, torch.set_num_threads, and no nesting inside a parallel region.
  torch::stable::parallel_for(begin, end, grain, [&](int64_t b, int64_t e) { fn(b, e, ctx); });
}

int max_threads() { return static_cast<int>(torch::stable::get_num_threads()); }

// torch's GEMM (MKL behind aten::mm), on the operands wrapped in place, never copied. A threaded MKL splits the
// reduction across threads when the output is small (a grad_weight's Kg x R), so its sums would change with the
// thread count (on Intel hosts even float64 differs by 1e-13 between 1 and 2 threads). Instead the output is cut
// into blocks whose size depends on the shape alone, each one sequential GEMM on one thread of torch's pool (MKL
// runs one thread inside a parallel region): every element is summed in one order whatever the thread count.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
          int64_t ldb, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  constexpr auto dtype = compat::scalar_type_of<T>();
  const torch::stable::Device cpu(torch::headeronly::DeviceType::CPU);
  // Up to 4 blocks of the longer side (rows of C, or columns), each at least 128 wide and a multiple of 16: each
  // block is a dispatcher call and packs an operand again, which cost 10-25% of a 1x1 layer at 16 blocks.
  const bool by_rows = m > n;
  const int64_t len = by_rows ? m : n, nblocks = std::min<int64_t>(4, (len + 127) / 128);
  const int64_t width = ((len + nblocks - 1) / nblocks + 15) / 16 * 16, blocks = (len + width - 1) / width;
  auto block = [&](int64_t i) {
    const int64_t lo = i * width;
    const int64_t bm = by_rows ? std::min(width, m - lo) : m, bn = by_rows ? n : std::min(width, n - lo);
    const T* ai = by_rows ? a + lo * (trans_a ? 1 : lda) : a;
    const T* bi = by_rows ? b : b + lo * (trans_b ? ldb : 1);
    T* ci = by_rows ? c + lo * ldc : c + lo;
    const int64_t a_strides[2] = {trans_a ? 1 : lda, trans_a ? lda : 1};
    const int64_t b_strides[2] = {trans_b ? 1 : ldb, trans_b ? ldb : 1};
    const int64_t c_strides[2] = {ldc, 1};
    auto ta = compat::wrap(const_cast<T*>(ai), {bm, k}, a_strides, dtype, cpu);
    auto tb = compat::wrap(const_cast<T*>(bi), {k, bn}, b_strides, dtype, cpu);
    auto tc = compat::wrap(ci, {bm, bn}, c_strides, dtype, cpu);
    compat::mm_out(tc, ta, tb);
  };
  // At least two items, so that a single block too runs inside a parallel region (on a pool of 2+ threads).
  parallel_for(0, std::max<int64_t>(blocks, 2), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end && i < blocks; ++i) block(i);
  });
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t,
                          float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t, const double*, int64_t,
                           double*, int64_t);

}  // namespace torchconv
