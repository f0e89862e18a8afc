#include "backends/cpu/broadcast.h"

namespace kiln::cpu {

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims) {
  std::vector<int64_t> s(out_dims.size(), 0);
  std::vector<int64_t> own = strides_of(in_dims);
  size_t lead = out_dims.size() - in_dims.size();
  for (size_t i = 0; i < in_dims.size(); ++i) s[lead + i] = in_dims[i] == 1 ? 0 : own[i];
  return s;
}

}  // namespace kiln::cpu
