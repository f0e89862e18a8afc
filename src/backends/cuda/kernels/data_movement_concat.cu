// CUDA kernels of the data_movement family, part 2: Concat and Split. Seen as [outer, axis *
// inner] rows, each input (Concat) or output (Split) is a block of columns of the big tensor,
// so one kernel launch copies all parts at once: a thread block row-copies one part's slab in
// the widest unit (up to 16 bytes) that every part's row size and address allow.
// Split's sizes need no host value: the output dims (fixed by the engine) already hold them.
#include <algorithm>

#include "backends/cuda/kernels/data_movement_common.h"

namespace kiln::cuda {
namespace dm {

namespace {

constexpr int kMaxParts = 32;  // parts per launch; more are done in further launches

struct Parts {
  int count;
  int64_t outer;       // rows
  int64_t big_row;     // units per row of the concatenated tensor
  void* ptr[kMaxParts];
  int64_t row[kMaxParts];     // units per row of each part
  int64_t offset[kMaxParts];  // unit offset of each part within a big row
};

// gridDim.y walks the parts; x blocks stride over the part's rows*row units.
template <class U, bool kSplit>
__global__ void parts_kernel(U* big, Parts p) {
  const int k = blockIdx.y;
  const int64_t row = p.row[k], n = p.outer * row;
  U* part = static_cast<U*>(p.ptr[k]);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = i / row, j = i - o * row;
    const int64_t b = o * p.big_row + p.offset[k] + j;
    if constexpr (kSplit) part[i] = big[b];
    else big[b] = part[i];
  }
}

// Copies between `big` (dims `dims`) and `parts` along `axis`.
Status move_parts(LaunchContext& c, void* big, const std::vector<int64_t>& dims, int64_t axis,
                  const std::vector<const DeviceTensor*>& parts, bool split) {
  const size_t es = dtype_size(c.outputs[0].dtype);
  const int64_t outer = product(dims, 0, size_t(axis));
  const int64_t inner_bytes = product(dims, size_t(axis) + 1, dims.size()) * int64_t(es);
  const int64_t big_bytes = dims[size_t(axis)] * inner_bytes;
  if (outer == 0 || big_bytes == 0) return Status::ok();
  // One unit for every part: it must divide every part's row bytes and offset, and align every pointer.
  size_t w = widest_unit(size_t(big_bytes), {big});
  for (const DeviceTensor* p : parts) {
    const int64_t rb = p->dims[size_t(axis)] * inner_bytes;
    w = std::min(w, widest_unit(size_t(rb), {p->data}));
  }
  std::vector<int64_t> offsets;
  int64_t off = 0;
  for (const DeviceTensor* p : parts) {
    offsets.push_back(off);
    off += p->dims[size_t(axis)] * inner_bytes;
  }
  for (size_t first = 0; first < parts.size(); first += kMaxParts) {
    Parts a{};
    a.outer = outer;
    a.big_row = big_bytes / int64_t(w);
    int64_t max_part = 0;
    for (size_t k = first; k < parts.size() && a.count < kMaxParts; ++k) {
      const int64_t rb = parts[k]->dims[size_t(axis)] * inner_bytes;
      if (rb == 0) continue;
      a.ptr[a.count] = parts[k]->data;
      a.row[a.count] = rb / int64_t(w);
      a.offset[a.count] = offsets[k] / int64_t(w);
      max_part = std::max(max_part, outer * a.row[a.count]);
      ++a.count;
    }
    if (!a.count) continue;
    dim3 grid(unsigned(std::min<int64_t>(cuda_grid_for(max_part, kThreads), 65535)), unsigned(a.count));
    auto go = [&](auto unit) {
      using U = decltype(unit);
      if (split) parts_kernel<U, true><<<grid, kThreads, 0, c.stream>>>(static_cast<U*>(big), a);
      else parts_kernel<U, false><<<grid, kThreads, 0, c.stream>>>(static_cast<U*>(big), a);
    };
    switch (w) {
      case 16: go(uint4{}); break;
      case 8: go((unsigned long long)0); break;
      case 4: go(uint32_t{}); break;
      case 2: go(uint16_t{}); break;
      default: go(uint8_t{}); break;
    }
  }
  return Status::ok();
}

int64_t norm_axis(int64_t axis, size_t rank) { return axis < 0 ? axis + int64_t(rank) : axis; }

Status concat(LaunchContext& c) {
  const DeviceTensor& y = c.outputs[0];
  const int64_t axis = norm_axis(c.node.attr_int("axis", 0), y.dims.size());
  if (axis < 0 || axis >= int64_t(y.dims.size())) return c.fail("axis out of range");
  std::vector<const DeviceTensor*> parts;
  for (const DeviceTensor& x : c.inputs)
    if (x.data || x.numel() == 0) parts.push_back(&x);
  return move_parts(c, y.data, y.dims, axis, parts, false);
}

Status split(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  const int64_t axis = norm_axis(c.node.attr_int("axis", 0), x.dims.size());
  if (axis < 0 || axis >= int64_t(x.dims.size())) return c.fail("axis out of range");
  std::vector<const DeviceTensor*> parts;
  for (const DeviceTensor& y : c.outputs) {
    if (!y.data && y.numel() > 0) return c.fail("omitted Split outputs are not supported");
    parts.push_back(&y);
  }
  return move_parts(c, x.data, x.dims, axis, parts, true);
}

Support check_split(const Node& n) {
  Support s = byte_types(n);
  if (!s.ok) return s;
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (!n.has_output(i)) return Support::no("an omitted Split output");
  return Support::yes();
}

}  // namespace

void register_concat_kernels(CudaKernelTable& t) {
  t.add({"", "Concat", "cuda.data_movement", concat, byte_types});
  t.add({"", "Split", "cuda.data_movement", split, check_split});
}

}  // namespace dm
}  // namespace kiln::cuda
