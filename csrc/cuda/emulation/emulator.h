// A CPU emulator for the CUDA kernels of csrc/cuda/ (the subset they use): a 1-D grid of 1-D blocks, threadIdx /
// blockIdx / blockDim / gridDim, __syncthreads and dynamic shared memory. Torch-free; compiled by g++ only.
//
// A block's threads are fibers on one OS thread. Each phase (the code between two barriers) runs the threads in a
// fresh random order, so a thread that reads shared memory another thread writes in the same phase sees the old
// value or the NaN the shared memory starts as: a missing __syncthreads gives a wrong answer instead of a lucky one.
// Kernels launched without barriers run their threads as plain calls (still shuffled), with no fiber switch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace torchconv::emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// What one emulated thread sees.
struct ThreadState {
  Dim3 thread_idx, block_idx, block_dim, grid_dim;
  unsigned char* shared = nullptr;  // the block's dynamic shared memory
};
ThreadState& self();

// __syncthreads(): every thread of the block reaches it before any goes on.
void syncthreads();

struct LaunchRecord {
  std::string name;
  int64_t grid;
  int block;
  size_t shared_bytes;
};

// Runs body() once per thread of a grid of `grid` blocks of `block` threads. barrier: whether the kernel calls
// __syncthreads (a call in a kernel launched without it throws). Each launch is recorded while recording() is on.
void launch(const char* name, int64_t grid, int block, size_t shared_bytes, bool barrier,
            const std::function<void()>& body);

// The launches recorded since the last clear; on while torchconv.testing.cuda_emulation() is active.
std::vector<LaunchRecord>& launches();
bool& recording();

}  // namespace torchconv::emu
