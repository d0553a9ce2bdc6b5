// This ISA's table of kernels, indexed by KernelId: its own direct kernels and the shared im2col ones.
#include "cpu/direct/common.h"

namespace torchconv {
inline namespace TC_CPU_CAPABILITY {

Arena& thread_arena() {
  thread_local Arena arena;
  return arena;
}

#define TORCHCONV_KERNEL_ADDRESS(id, fn) &fn##_fns,
extern const KernelFns* const kernel_table[kNumKernels];
const KernelFns* const kernel_table[kNumKernels] = {TORCHCONV_KERNELS(TORCHCONV_KERNEL_ADDRESS)};

}  // namespace TC_CPU_CAPABILITY
}  // namespace torchconv
