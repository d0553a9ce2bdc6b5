// The few things torchconv needs that torch::stable (target 2.10) does not spell out, wrapped in one place.
// Each shim goes through torch_call_dispatcher, so the binary stays on the stable ABI; delete a shim when upstream
// grows the call.
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>

#include <array>
#include <initializer_list>

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

// A CPU tensor viewing memory it does not own.
inline Tensor wrap(void* data, std::initializer_list<int64_t> sizes, const int64_t* strides, ScalarType dtype) {
  const std::vector<int64_t> sz(sizes);
  const std::vector<int64_t> st(strides, strides + sz.size());
  return torch::stable::from_blob(data, sz, st, torch::stable::Device(torch::headeronly::DeviceType::CPU), dtype);
}

// aten::mm.out(self, mat2, *, out)
inline void mm_out(Tensor& out, const Tensor& self, const Tensor& mat2) {
  std::array<StableIValue, 3> stack{torch::stable::detail::from(self), torch::stable::detail::from(mat2),
                                    torch::stable::detail::from(out)};
  STABLE_TORCH_ERROR_CODE_CHECK(torch_call_dispatcher("aten::mm", "out", stack.data(), TORCH_ABI_VERSION));
  (void)torch::stable::detail::to<Tensor>(stack[0]);  // take ownership of the returned alias so it is released
}

}  // namespace torchconv::compat
