// The CUDA backend's link to torch's CUDA runtime. The module must import on a CPU-only torch with no driver, so
// nothing here is linked against libtorch_cuda: the one call it needs (the current stream) is looked up in the
// already-loaded library at first use.
#include <dlfcn.h>

#include "cuda/adapter.h"

namespace torchconv::cuda {

void* current_stream(int32_t device_index) {
  using GetStream = int32_t (*)(int32_t, void**);  // aoti_torch_get_current_cuda_stream (torch's C shim)
  static const GetStream get = [] {
    void* lib = dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_NOLOAD);
    return lib ? reinterpret_cast<GetStream>(dlsym(lib, "aoti_torch_get_current_cuda_stream")) : nullptr;
  }();
  TC_CHECK(get, "torch's CUDA library (libtorch_cuda.so) is not loaded, or lacks aoti_torch_get_current_cuda_stream");
  void* stream = nullptr;
  TC_CHECK(get(device_index, &stream) == 0, "could not get the current CUDA stream of cuda:", device_index);
  return stream;
}

#ifdef TORCHCONV_WITH_CUDA
Backend gpu_backend() { return {DeviceType::CUDA, &gpu_launchers(), true}; }
#endif

}  // namespace torchconv::cuda
