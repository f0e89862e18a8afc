// Pieces the indexing kernels (indexing.cc, indexing_select.cc) share: they move elements as
// bytes, so every fixed-size type goes through one code path.
#pragma once
#include <vector>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

inline int64_t product(std::vector<int64_t>::const_iterator first, std::vector<int64_t>::const_iterator last) {
  int64_t p = 1;
  for (; first != last; ++first) p *= *first;
  return p;
}

inline Expected<size_t> element_size(const KernelContext& ctx, DataType t) {
  size_t es = dtype_size(t);
  if (es == 0) return ctx.fail("unsupported element type ", dtype_name(t));
  return es;
}

}  // namespace kiln::cpu
