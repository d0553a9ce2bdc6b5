// The few things torchconv needs that torch::stable (target 2.10) does not spell out, wrapped in one place.
// Each shim goes through torch_call_dispatcher, so the binary stays on the stable ABI; delete a shim when upstream
// grows the call.
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>

#include <array>
#include <initializer_list>
#include <string>

// torch 2.11 renamed the shim's error check; the headers of every torch from 2.10 on must build this file.
#ifndef STABLE_TORCH_ERROR_CODE_CHECK
#define STABLE_TORCH_ERROR_CODE_CHECK TORCH_ERROR_CODE_CHECK
#endif

namespace torchconv::compat {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

template <typename T>
constexpr ScalarType scalar_type_of() {
  return std::is_same_v<T, float> ? ScalarType::Float : ScalarType::Double;
}

// A tensor on `device` viewing memory it does not own.
inline Tensor wrap(void* data, std::initializer_list<int64_t> sizes, const int64_t* strides, ScalarType dtype,
                   torch::stable::Device device) {
  const std::vector<int64_t> sz(sizes);
  const std::vector<int64_t> st(strides, strides + sz.size());
  return torch::stable::from_blob(data, sz, st, device, dtype);
}

// aten::mm.out(self, mat2, *, out)
inline void mm_out(Tensor& out, const Tensor& self, const Tensor& mat2) {
  std::array<StableIValue, 3> stack{torch::stable::detail::from(self), torch::stable::detail::from(mat2),
                                    torch::stable::detail::from(out)};
  STABLE_TORCH_ERROR_CODE_CHECK(torch_call_dispatcher("aten::mm", "out", stack.data(), TORCH_ABI_VERSION));
  (void)torch::stable::detail::to<Tensor>(stack[0]);  // take ownership of the returned alias so it is released
}

// aten::bmm.out(self, mat2, *, out): cuBLAS on a GPU.
inline void bmm_out(Tensor& out, const Tensor& self, const Tensor& mat2) {
  std::array<StableIValue, 3> stack{torch::stable::detail::from(self), torch::stable::detail::from(mat2),
                                    torch::stable::detail::from(out)};
  STABLE_TORCH_ERROR_CODE_CHECK(torch_call_dispatcher("aten::bmm", "out", stack.data(), TORCH_ABI_VERSION));
  (void)torch::stable::detail::to<Tensor>(stack[0]);
}

// A schema `str` argument. torch's own StableIValue -> std::string conversion (2.10 to 2.13) leaks the std::string
// object it makes on every call (pytorch/pytorch#191340): 32 bytes per argument per call, which also pins freed
// blocks below it in the heap, so a training loop's RSS grew without bound. Adapters take this type instead; its
// conversion below reads the handle into a value and deletes the handle, and it binds to a const std::string&.
struct Str : std::string {};

}  // namespace torchconv::compat

template <>
struct torch::stable::detail::ToImpl<torchconv::compat::Str> {
  static torchconv::compat::Str call(StableIValue val, uint64_t /*extension_build_version*/, bool /*is_internal*/) {
    const StringHandle handle = torch::stable::detail::to<StringHandle>(val);
    struct Release {  // the handle is ours, and is deleted on every path out, a throwing check included
      StringHandle h;
      ~Release() { (void)torch_delete_string(h); }
    } release{handle};
    size_t length = 0;
    const char* data = nullptr;
    STABLE_TORCH_ERROR_CODE_CHECK(torch_string_length(handle, &length));
    STABLE_TORCH_ERROR_CODE_CHECK(torch_string_c_str(handle, &data));
    return torchconv::compat::Str{std::string(data, length)};
  }
};
