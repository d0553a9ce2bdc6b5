// The algorithm argument as a list: kernel names (or auto) separated by commas, one kernel per pass at most, the
// form torchconv's autotune passes. Shared by both backends' plans; torch-free.
#pragma once

#include <cstddef>
#include <string>

#include "common/geometry.h"

namespace torchconv {

// Whether `requested` is such a list.
inline bool is_algorithm_list(const std::string& requested) { return requested.find(',') != std::string::npos; }

// The list's entry for `pass`: the kernel it names of that pass, or "auto" where it names none. rows: the
// backend's registry (each row with a name and a pass); a name that is no row's raises.
template <typename Row, size_t N>
std::string list_entry(const std::string& requested, ConvPass pass, const Row (&rows)[N]) {
  std::string mine = "auto";
  for (size_t start = 0; start <= requested.size();) {
    const size_t comma = requested.find(',', start), end = comma == std::string::npos ? requested.size() : comma;
    const std::string name = requested.substr(start, end - start);
    const Row* row = nullptr;
    for (const Row& r : rows)
      if (name == r.name) row = &r;
    if (!row && name != "auto")
      detail::fail("unknown kernel '", name, "' in the algorithm list '", requested,
                   "'; expected kernel names (torchconv.kernels()) or auto, separated by commas");
    if (row && row->pass == pass) mine = name;
    start = end + 1;
  }
  return mine;
}

}  // namespace torchconv
