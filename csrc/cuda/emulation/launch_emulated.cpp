// The emulator's launch table: the same kernel sources as cuda/launch.cu, compiled by g++ against emulator.h and
// run on the CPU, one block after another, on the calling thread.
#include "cuda/launch_table.h"

namespace torchconv::cuda {
namespace {

struct EmulatedLaunch {
  static const char* run(const char* name, Kernel kernel, const LaunchConfig& c, const CudaParams& p, void*) {
    emu::launch(name, c.grid, c.block, c.shared_bytes, c.barrier, [&] { kernel(p); });
    return nullptr;
  }
};

}  // namespace

const LaunchTable& emulated_launchers() {
  static const LaunchTable table = make_launch_table<EmulatedLaunch>();
  return table;
}

}  // namespace torchconv::cuda
