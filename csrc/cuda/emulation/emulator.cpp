// The fiber scheduler behind emulator.h. A fiber switch is a dozen instructions (tc_emu_switch below), not
// swapcontext, which makes a signal-mask system call on every switch: a barrier over 256 threads costs
// microseconds, so the emulated suites can run every kernel that synchronises.
#include "cuda/emulation/emulator.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>

// AddressSanitizer must be told of each stack switch (its fake stacks and the bounds it unpoisons are per stack).
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define TC_ASAN_START(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define TC_ASAN_FINISH(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
// A finished fiber never returns from its frames, so their redzones stay poisoned: clear them before reuse.
#define TC_ASAN_UNPOISON(p, size) ASAN_UNPOISON_MEMORY_REGION(p, size)
#else
#define TC_ASAN_UNPOISON(p, size) ((void)(p), (void)(size))
#define TC_ASAN_START(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define TC_ASAN_FINISH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#endif

// void tc_emu_switch(void** save_sp, void* load_sp): saves the callee-saved registers (System V x86-64) on this
// stack, stores the stack pointer to *save_sp, and resumes the stack at load_sp the same way.
extern "C" void tc_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl tc_emu_switch
  .hidden tc_emu_switch
  .type tc_emu_switch, @function
tc_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size tc_emu_switch, .-tc_emu_switch
)");

namespace torchconv::emu {
namespace {

constexpr size_t kStackBytes = size_t(64) << 10;

struct Fiber {
  void* sp = nullptr;
  bool done = false;
  void* asan_fake_stack = nullptr;
};

struct Scheduler {
  ThreadState state;
  std::vector<Fiber> fibers;
  std::unique_ptr<unsigned char[]> stacks;
  size_t stack_count = 0;
  std::vector<unsigned char> shared;
  void* main_sp = nullptr;
  const void* main_bottom = nullptr;  // the OS thread's stack, as AddressSanitizer reports it
  size_t main_size = 0;
  int current = -1;  // the running fiber, or -1 outside a fiber
  const std::function<void()>* body = nullptr;
  std::exception_ptr error;
  std::mt19937_64 rng{0x7c0ffee};
};
thread_local Scheduler sched;

const void* stack_bottom(size_t t) { return sched.stacks.get() + t * kStackBytes; }

// Back to the scheduler: from syncthreads (to be resumed) or from a finished fiber (never resumed).
void switch_to_main(Fiber& f, bool resumed) {
  TC_ASAN_START(resumed ? &f.asan_fake_stack : nullptr, sched.main_bottom, sched.main_size);
  void* dead = nullptr;
  tc_emu_switch(resumed ? &f.sp : &dead, sched.main_sp);
  TC_ASAN_FINISH(f.asan_fake_stack, &sched.main_bottom, &sched.main_size);
}

[[noreturn]] void fiber_start() {
  TC_ASAN_FINISH(nullptr, &sched.main_bottom, &sched.main_size);
  try {
    (*sched.body)();
  } catch (...) {
    if (!sched.error) sched.error = std::current_exception();
  }
  sched.fibers[sched.current].done = true;
  switch_to_main(sched.fibers[sched.current], false);
  std::abort();  // a finished fiber is never resumed
}

// A fresh stack for fiber t whose first switch "returns" into fiber_start with the stack aligned as after a call.
void* initial_stack(size_t t) {
  TC_ASAN_UNPOISON(sched.stacks.get() + t * kStackBytes, kStackBytes);
  auto top = reinterpret_cast<uintptr_t>(sched.stacks.get() + (t + 1) * kStackBytes) & ~uintptr_t(15);
  auto* slot = reinterpret_cast<void**>(top);
  *--slot = nullptr;                                       // fiber_start's own return address: never used
  *--slot = reinterpret_cast<void*>(&fiber_start);         // where tc_emu_switch's ret goes
  for (int r = 0; r < 6; ++r) *--slot = nullptr;           // rbp, rbx, r12-r15
  return slot;
}

void run_block_with_barriers(int block, std::vector<int>& order) {
  if (sched.stack_count < size_t(block)) {
    sched.stacks.reset(new unsigned char[size_t(block) * kStackBytes]);
    sched.stack_count = block;
  }
  sched.fibers.assign(block, Fiber{});
  for (int t = 0; t < block; ++t) sched.fibers[t].sp = initial_stack(t);
  for (int alive = block; alive > 0;) {  // one phase per pass: every live thread runs to its next barrier or its end
    std::shuffle(order.begin(), order.end(), sched.rng);
    for (int t : order) {
      if (sched.fibers[t].done) continue;
      sched.current = t;
      sched.state.thread_idx.x = t;
      void* main_fake_stack = nullptr;
      TC_ASAN_START(&main_fake_stack, stack_bottom(t), kStackBytes);
      tc_emu_switch(&sched.main_sp, sched.fibers[t].sp);
      TC_ASAN_FINISH(main_fake_stack, nullptr, nullptr);
      sched.current = -1;
      if (sched.fibers[t].done) --alive;
    }
  }
}

}  // namespace

ThreadState& self() { return sched.state; }

void syncthreads() {
  if (sched.current < 0)
    throw std::logic_error("torchconv: an emulated kernel called __syncthreads but was launched without barrier");
  switch_to_main(sched.fibers[sched.current], true);
}

std::vector<LaunchRecord>& launches() {
  static std::vector<LaunchRecord> records;
  return records;
}
bool& recording() {
  static bool on = false;
  return on;
}

void launch(const char* name, int64_t grid, int block, size_t shared_bytes, bool barrier,
            const std::function<void()>& body) {
  if (recording()) launches().push_back({name, grid, block, shared_bytes});
  if (grid <= 0 || block <= 0) return;
  ThreadState& s = sched.state;
  s.block_dim = Dim3{unsigned(block)};
  s.grid_dim = Dim3{unsigned(grid)};
  sched.body = &body;
  sched.error = nullptr;
  std::vector<int> order(block);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t b = 0; b < grid && !sched.error; ++b) {
    s.block_idx.x = unsigned(b);
    sched.shared.assign(shared_bytes, 0xFF);  // all-ones bytes: NaN in every floating type
    s.shared = sched.shared.data();
    if (barrier) {
      run_block_with_barriers(block, order);
    } else {
      std::shuffle(order.begin(), order.end(), sched.rng);
      for (int t : order) {
        s.thread_idx.x = t;
        body();
      }
    }
  }
  sched.body = nullptr;
  if (sched.error) std::rethrow_exception(sched.error);
}

}  // namespace torchconv::emu
