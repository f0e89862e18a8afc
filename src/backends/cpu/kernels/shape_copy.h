// Type-agnostic data movement for the shape family's kernels. Transpose, Slice, Expand, Tile,
// DepthToSpace and SpaceToDepth are all "output element i reads the input at base + sum of
// index_d * stride_d" for suitable (possibly 0 or negative) strides, so one loop serves them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace kiln::cpu {

// Row-major strides, in elements.
inline std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t d = dims.size(); d-- > 1;) s[d - 1] = s[d] * dims[d];
  return s;
}

namespace detail {
template <size_t kSize>
void strided_copy_fixed(const std::byte* src, int64_t base, const std::vector<int64_t>& strides, std::byte* dst,
                        const std::vector<int64_t>& out_dims, size_t esize) {
  const size_t rank = out_dims.size();
  int64_t total = 1;
  for (int64_t d : out_dims) total *= d;
  std::vector<int64_t> idx(rank, 0);
  int64_t off = base;
  for (int64_t i = 0; i < total; ++i) {
    std::memcpy(dst + i * (kSize ? kSize : esize), src + off * (kSize ? kSize : esize), kSize ? kSize : esize);
    for (size_t d = rank; d-- > 0;) {  // odometer step, keeping the source offset in sync
      if (++idx[d] < out_dims[d]) { off += strides[d]; break; }
      off -= strides[d] * (out_dims[d] - 1);
      idx[d] = 0;
    }
  }
}
}  // namespace detail

// dst[i] = src[base + sum_d idx_d(i) * strides[d]] over the row-major index space out_dims;
// offsets and strides count elements of `esize` bytes.
inline void strided_copy(const std::byte* src, int64_t base, const std::vector<int64_t>& strides, std::byte* dst,
                         const std::vector<int64_t>& out_dims, size_t esize) {
  switch (esize) {  // fixed sizes let memcpy compile to one load/store
    case 1: return detail::strided_copy_fixed<1>(src, base, strides, dst, out_dims, esize);
    case 2: return detail::strided_copy_fixed<2>(src, base, strides, dst, out_dims, esize);
    case 4: return detail::strided_copy_fixed<4>(src, base, strides, dst, out_dims, esize);
    case 8: return detail::strided_copy_fixed<8>(src, base, strides, dst, out_dims, esize);
    default: return detail::strided_copy_fixed<0>(src, base, strides, dst, out_dims, esize);
  }
}

}  // namespace kiln::cpu
