// The tensor checks every device's adapter shares, and the output layout torch gives a convolution.
// The shape rules themselves live in common/geometry.h; python/torchconv/_geometry.py is their Python twin.
#pragma once

#include <array>
#include <optional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "common/geometry.h"
#include "ops/stable_compat.h"

namespace torchconv {

using torch::headeronly::MemoryFormat;
using torch::headeronly::ScalarType;
using torch::stable::Tensor;

inline const char* dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Float: return "float32";
    case ScalarType::Double: return "float64";
    case ScalarType::Half: return "float16";
    case ScalarType::BFloat16: return "bfloat16";
    case ScalarType::Int: return "int32";
    case ScalarType::Long: return "int64";
    default: return torch::headeronly::toString(t);
  }
}

// float16 and bfloat16: stored in half precision, computed in float32.
inline bool is_half(ScalarType t) { return t == ScalarType::Half || t == ScalarType::BFloat16; }
inline bool is_supported(ScalarType t) { return t == ScalarType::Float || t == ScalarType::Double || is_half(t); }
inline int64_t element_size(ScalarType t) { return t == ScalarType::Double ? 8 : is_half(t) ? 2 : 4; }

inline const char* device_name(torch::headeronly::DeviceType t) {
  switch (t) {
    case torch::headeronly::DeviceType::CPU: return "cpu";
    case torch::headeronly::DeviceType::CUDA: return "cuda";
    case torch::headeronly::DeviceType::Meta: return "meta";
    default: return "another device";
  }
}

inline void check_4d(const Tensor& t, const char* name) {
  TC_CHECK(t.dim() == 4, "expected ", name, " to be 4-D, got ", t.dim(), "-D");
}

// Every tensor argument: float32, float64, bfloat16 or float16, of the first one's dtype, and on the first one's
// device (type and index), which must be the adapter's.
inline void check_tensors(torch::headeronly::DeviceType device,
                          std::initializer_list<std::pair<const Tensor*, const char*>> ts) {
  const Tensor& first = *ts.begin()->first;
  const ScalarType dtype = first.scalar_type();
  TC_CHECK(is_supported(dtype), "unsupported dtype ", dtype_name(dtype), " of ", ts.begin()->second,
           "; supported: float32, float64, bfloat16, float16");
  for (const auto& [t, name] : ts) {
    TC_CHECK(t->device().type() == device, "expected ", name, " on the ", device_name(device), ", like ",
             ts.begin()->second, ", got ", device_name(t->device().type()));
    TC_CHECK(device == torch::headeronly::DeviceType::CPU || t->get_device_index() == first.get_device_index(),
             "expected ", name, " on ", device_name(device), ":", first.get_device_index(), " like ",
             ts.begin()->second, ", got ", device_name(device), ":", t->get_device_index());
    TC_CHECK(t->scalar_type() == dtype, name, " has dtype ", dtype_name(t->scalar_type()), " but ",
             ts.begin()->second, " has dtype ", dtype_name(dtype));
  }
}

inline void check_len(const std::vector<int64_t>& v, size_t n, const char* name) {
  TC_CHECK(v.size() == n, name, " must have ", n, " values, got ", v.size());
}

// common/geometry.h throws std::invalid_argument; torch turns it into a RuntimeError with the same message.
inline ConvGeometry geometry(const int64_t* input_size, const int64_t* weight_size, const std::vector<int64_t>& stride,
                             const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation,
                             int64_t groups, const std::string& padding_mode) {
  check_len(stride, 2, "stride");
  check_len(padding, 4, "padding");
  check_len(dilation, 2, "dilation");
  return make_geometry(input_size, weight_size, stride.data(), padding.data(), dilation.data(), groups, padding_mode);
}

inline std::array<int64_t, 4> sizes4(const Tensor& t) {
  return {t.size(0), t.size(1), t.size(2), t.size(3)};
}

inline Strides4 strides4(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }

// torch's rule for "does this 4-D tensor look channels_last" (c10 is_channels_last_strides_2d_s4): walk C, W, H, N
// and require non-decreasing strides; ambiguous layouts (size-1 dims, zero C stride) fall back to NCHW.
inline bool suggests_channels_last(const Tensor& t) {
  if (t.stride(1) == 0) return false;
  int64_t min = 0;
  for (int d : {1, 3, 2, 0}) {
    if (t.size(d) == 0 || t.stride(d) < min) return false;
    if (d == 0 && min == t.stride(1)) return false;
    min = t.stride(d) * (t.size(d) > 1 ? t.size(d) : 1);
  }
  return true;
}

// torch's conv2d output layout: channels_last when either operand suggests it (thnn/mkldnn_conv_use_channels_last).
inline MemoryFormat output_format(const Tensor& a, const Tensor& b) {
  return suggests_channels_last(a) || suggests_channels_last(b) ? MemoryFormat::ChannelsLast
                                                                 : MemoryFormat::Contiguous;
}

// grad_output must have the shape the geometry gives the forward output.
inline void check_output_size(const Tensor& grad_output, const ConvGeometry& g) {
  const auto s = sizes4(grad_output);
  TC_CHECK(s[0] == g.N && s[1] == g.K && s[2] == g.OH && s[3] == g.OW, "grad_output has size (", s[0], ", ", s[1],
           ", ", s[2], ", ", s[3], "), expected (", g.N, ", ", g.K, ", ", g.OH, ", ", g.OW, ")");
}

// The argument checks of each op, which every backend's adapter makes first (device: the adapter's); each returns
// the geometry of the call.
inline ConvGeometry check_conv2d(torch::headeronly::DeviceType device, const Tensor& input, const Tensor& weight,
                                 const std::optional<Tensor>& bias, const std::vector<int64_t>& stride,
                                 const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation,
                                 int64_t groups, const std::string& padding_mode) {
  check_4d(input, "input");
  check_4d(weight, "weight");
  check_tensors(device, {{&input, "input"}, {&weight, "weight"}});
  const auto in_size = sizes4(input), w_size = sizes4(weight);
  const ConvGeometry g = geometry(in_size.data(), w_size.data(), stride, padding, dilation, groups, padding_mode);
  if (bias.has_value()) {
    check_tensors(device, {{&input, "input"}, {&*bias, "bias"}});
    TC_CHECK(bias->dim() == 1 && bias->size(0) == g.K, "expected bias of size (", g.K,
             "), one per output channel, got a ", bias->dim(), "-D bias with ", bias->numel(), " elements");
  }
  return g;
}

inline ConvGeometry check_conv2d_grad_input(torch::headeronly::DeviceType device, const Tensor& grad_output,
                                            const Tensor& weight, const std::vector<int64_t>& input_size,
                                            const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                                            const std::vector<int64_t>& dilation, int64_t groups,
                                            const std::string& padding_mode) {
  check_4d(grad_output, "grad_output");
  check_4d(weight, "weight");
  check_len(input_size, 4, "input_size");
  check_tensors(device, {{&grad_output, "grad_output"}, {&weight, "weight"}});
  const auto w_size = sizes4(weight);
  const ConvGeometry g = geometry(input_size.data(), w_size.data(), stride, padding, dilation, groups, padding_mode);
  check_output_size(grad_output, g);
  return g;
}

inline ConvGeometry check_conv2d_grad_weight(torch::headeronly::DeviceType device, const Tensor& input,
                                             const Tensor& grad_output, const std::vector<int64_t>& weight_size,
                                             const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                                             const std::vector<int64_t>& dilation, int64_t groups,
                                             const std::string& padding_mode) {
  check_4d(input, "input");
  check_4d(grad_output, "grad_output");
  check_len(weight_size, 4, "weight_size");
  check_tensors(device, {{&input, "input"}, {&grad_output, "grad_output"}});
  const auto in_size = sizes4(input);
  const ConvGeometry g = geometry(in_size.data(), weight_size.data(), stride, padding, dilation, groups, padding_mode);
  check_output_size(grad_output, g);
  return g;
}

}  // namespace torchconv
