// Broadcast iteration for CPU kernels: walks the output of a numpy-broadcast op and yields,
// for every output element, the offset of the matching element in each input.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::cpu {

// Row-major strides of `dims`.
std::vector<int64_t> strides_of(const std::vector<int64_t>& dims);

// Strides of `in_dims` seen through the broadcast to `out_dims` (0 where broadcast).
std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims);

// Calls f(out_index, offsets) for every output element, where offsets[k] indexes input k.
template <size_t N, class F>
void for_each_broadcast(const std::vector<int64_t>& out_dims, const std::array<std::vector<int64_t>, N>& in_dims,
                        F&& f) {
  const size_t rank = out_dims.size();
  int64_t total = 1;
  for (int64_t d : out_dims) total *= d;
  if (total == 0) return;
  std::array<std::vector<int64_t>, N> st;
  for (size_t k = 0; k < N; ++k) st[k] = broadcast_strides(in_dims[k], out_dims);
  std::vector<int64_t> idx(rank, 0);
  std::array<int64_t, N> off{};
  for (int64_t i = 0; i < total; ++i) {
    f(i, off);
    for (size_t d = rank; d-- > 0;) {  // odometer increment, updating offsets incrementally
      if (++idx[d] < out_dims[d]) {
        for (size_t k = 0; k < N; ++k) off[k] += st[k][d];
        break;
      }
      for (size_t k = 0; k < N; ++k) off[k] -= st[k][d] * (out_dims[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace kiln::cpu
