// Shared pieces of the data_movement family (data_movement*.cu). These ops move elements as
// opaque bytes, so one kernel per element *size* (1/2/4/8, and 16 when a contiguous run can be
// widened into uint4 loads) serves every element type: int64, bool, half, float...
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/launch.h"

namespace kiln::cuda::dm {

constexpr int kThreads = 256;
constexpr int kMaxRank = 8;

// dst[i] = src[base + sum_d idx_d(i) * strides[d]] over the row-major index space `dims`
// (offsets and strides in elements of `esize` bytes; strides may be 0 or negative). Adjacent
// dims are merged, size-1 dims dropped, the innermost contiguous run is widened to 16/8/4-byte
// units where alignment allows, and a batched 2-D swap goes through a shared-memory tile
// transpose. `dims` may be of any rank as long as it coalesces to kMaxRank or fewer.
Status strided_copy(LaunchContext& c, const void* src, int64_t base, std::vector<int64_t> strides, void* dst,
                    std::vector<int64_t> dims, size_t esize);

// Row-major strides of `dims`, in elements.
inline std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t d = dims.size(); d-- > 1;) s[d - 1] = s[d] * dims[d];
  return s;
}

inline int64_t product(const std::vector<int64_t>& v, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e && i < v.size(); ++i) p *= v[i];
  return p;
}

// The widest unit (16, 8, 4, 2 or 1 bytes) dividing `bytes` that every pointer is aligned to.
inline size_t widest_unit(size_t bytes, std::initializer_list<const void*> ptrs) {
  for (size_t w : {16, 8, 4, 2}) {
    if (bytes % w) continue;
    bool ok = true;
    for (const void* p : ptrs) ok = ok && (reinterpret_cast<uintptr_t>(p) % w == 0);
    if (ok) return w;
  }
  return 1;
}

// Element types a byte-moving kernel can take (all fixed-size ONNX types up to 8 bytes).
inline Support byte_types(const Node& n) {
  const Value* out = n.outputs.empty() ? nullptr : n.outputs[0];
  if (!out) return Support::no("no output");
  size_t es = dtype_size(out->dtype);
  if (es == 1 || es == 2 || es == 4 || es == 8) return Support::yes();
  return Support::no(std::string("element type ") + dtype_name(out->dtype));
}

// Whether input i's value is fixed when the engine is built (an initializer).
inline bool is_constant(const Node& n, size_t i) { return i < n.inputs.size() && n.inputs[i] && n.inputs[i]->initializer; }

// The host copy of input i's value, as int64s; fails naming the parameter when the engine has none.
Expected<std::vector<int64_t>> host_ints(const LaunchContext& c, size_t i, const char* what);

// Registration of the family's other files (called from register_cuda_data_movement_kernels).
void register_concat_kernels(CudaKernelTable& t);
void register_gather_kernels(CudaKernelTable& t);
void register_pad_fill_kernels(CudaKernelTable& t);
void register_resize_kernels(CudaKernelTable& t);

}  // namespace kiln::cuda::dm
