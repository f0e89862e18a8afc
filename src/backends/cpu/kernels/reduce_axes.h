// Axis-group iteration shared by the reduce, normalization and loss kernels: splits a
// tensor's axes into "kept" and "reduced" and lists, for each, the element offsets of every
// index combination in row-major order. A reduction then reads
//   x[kept_offsets[o] + reduced_offsets[j]]  for output o and the j-th reduced element.
#pragma once
#include <cstdint>
#include <vector>

namespace kiln::cpu {

// Offsets (in elements) of every combination of the axes k with select[k] == want, in
// row-major order of those axes; the other axes stay at index 0. One entry (0) if none.
inline std::vector<int64_t> axis_offsets(const std::vector<int64_t>& dims, const std::vector<bool>& select,
                                         bool want) {
  const size_t rank = dims.size();
  std::vector<int64_t> strides(rank, 1);
  for (size_t k = rank; k-- > 1;) strides[k - 1] = strides[k] * dims[k];
  std::vector<int64_t> offsets{0};
  for (size_t k = 0; k < rank; ++k) {
    if (select[k] != want) continue;
    std::vector<int64_t> next;
    next.reserve(offsets.size() * static_cast<size_t>(dims[k]));
    for (int64_t base : offsets)
      for (int64_t i = 0; i < dims[k]; ++i) next.push_back(base + i * strides[k]);
    offsets = std::move(next);
  }
  return offsets;
}

// The split of `dims` by a mask of reduced axes.
struct AxisGroups {
  std::vector<int64_t> kept;     // one offset per output element (kept axes)
  std::vector<int64_t> reduced;  // one offset per element of each reduced group
};

inline AxisGroups split_axes(const std::vector<int64_t>& dims, const std::vector<bool>& reduce) {
  return AxisGroups{axis_offsets(dims, reduce, false), axis_offsets(dims, reduce, true)};
}

}  // namespace kiln::cpu
