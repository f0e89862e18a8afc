// CUDA kernels of the data_movement family, part 3: Gather, GatherElements, GatherND,
// ScatterND and ScatterElements (reduction "none"), OneHot. Indices (int32 or int64) live on
// the device and are read there: negative ones count from the end, as on the CPU. The CPU
// kernel reports an out-of-range index as an error; the device cannot report without a host
// sync, so here an out-of-range index is undefined behaviour (valid indices match the CPU).
// Scatter with duplicate indices: which update wins is unspecified (ONNX leaves it undefined).
#include <algorithm>

#include "backends/cuda/kernels/data_movement_common.h"

namespace kiln::cuda {
namespace dm {

namespace {

template <class J>
__device__ __forceinline__ int64_t wrap(J i, int64_t n) {
  int64_t v = int64_t(i);
  return v < 0 ? v + n : v;
}

// Gather: out [outer, nidx, inner] = data [outer, n, inner] at index idx[j] on the middle axis.
template <class U, class J>
__global__ void gather_kernel(const U* __restrict__ data, const J* __restrict__ idx, U* __restrict__ out, int64_t total,
                              int64_t nidx, int64_t inner, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / inner, e = i - t * inner;
    const int64_t o = t / nidx, j = t - o * nidx;
    out[i] = data[(o * n + wrap(idx[j], n)) * inner + e];
  }
}

struct ElemArgs {
  int rank, axis;
  int64_t idx_dims[kMaxRank];
  int64_t data_strides[kMaxRank];
  int64_t axis_len;
};

// Data offset of indices element e: its own coordinates, the one at `axis` replaced by idx[e].
template <class J>
__device__ __forceinline__ int64_t elem_offset(const J* idx, int64_t e, const ElemArgs& a) {
  int64_t rem = e, off = 0;
  for (int d = a.rank - 1; d >= 0; --d) {
    const int64_t q = rem / a.idx_dims[d], coord = rem - q * a.idx_dims[d];
    rem = q;
    off += (d == a.axis ? wrap(idx[e], a.axis_len) : coord) * a.data_strides[d];
  }
  return off;
}

template <class U, class J>
__global__ void gather_elements_kernel(const U* __restrict__ data, const J* __restrict__ idx, U* __restrict__ out,
                                       int64_t total, ElemArgs a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = data[elem_offset(idx, i, a)];
}

template <class U, class J>
__global__ void scatter_elements_kernel(const U* __restrict__ upd, const J* __restrict__ idx, U* __restrict__ out,
                                        int64_t total, ElemArgs a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    out[elem_offset(idx, i, a)] = upd[i];
}

// The ND ops: data as [batch, indexed (k dims)..., slice]; indices as [batch, tuples, k].
struct NdArgs {
  int k;
  int64_t tuples_per_batch, batch_stride, slice;
  int64_t dims[kMaxRank], strides[kMaxRank];  // of the k indexed data dims (in slice units)
};

template <class J>
__device__ __forceinline__ int64_t tuple_offset(const J* idx, int64_t t, const NdArgs& a) {
  int64_t off = (t / a.tuples_per_batch) * a.batch_stride;
  for (int j = 0; j < a.k; ++j) off += wrap(idx[t * a.k + j], a.dims[j]) * a.strides[j];
  return off;
}

template <class U, class J, bool kScatter>
__global__ void nd_kernel(const U* __restrict__ src, const J* __restrict__ idx, U* __restrict__ dst, int64_t total, NdArgs a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / a.slice, s = i - t * a.slice;
    const int64_t off = tuple_offset(idx, t, a) + s;
    if constexpr (kScatter) dst[off] = src[i];
    else dst[i] = src[off];
  }
}

// Calls f(U{}, J{}) with U the unsigned type of `unit` bytes and J the index type.
template <class F>
Status dispatch(LaunchContext& c, size_t unit, DataType index_type, F&& f) {
  auto with_unit = [&](auto j) -> Status {
    switch (unit) {
      case 1: f(uint8_t{}, j); return Status::ok();
      case 2: f(uint16_t{}, j); return Status::ok();
      case 4: f(uint32_t{}, j); return Status::ok();
      case 8: f((unsigned long long)0, j); return Status::ok();
      case 16: f(uint4{}, j); return Status::ok();
      default: return c.fail("element size ", unit, " is not supported");
    }
  };
  if (index_type == DataType::kInt64) return with_unit(int64_t{});
  if (index_type == DataType::kInt32) return with_unit(int32_t{});
  return c.fail("indices of type ", dtype_name(index_type));
}

Expected<int64_t> axis_of(const LaunchContext& c, size_t rank) {
  int64_t axis = c.node.attr_int("axis", 0);
  if (axis < 0) axis += int64_t(rank);
  if (axis < 0 || axis >= int64_t(rank)) return c.fail("axis out of range for rank ", rank);
  return axis;
}

Status gather(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &ind = c.inputs[1], &y = c.outputs[0];
  KILN_ASSIGN_OR_RETURN(int64_t axis, axis_of(c, x.dims.size()));
  const int64_t outer = product(x.dims, 0, size_t(axis)), n = x.dims[size_t(axis)];
  const size_t es = dtype_size(x.dtype);
  const int64_t inner_bytes = product(x.dims, size_t(axis) + 1, x.dims.size()) * int64_t(es);
  const int64_t nidx = ind.numel();
  if (y.numel() == 0) return Status::ok();
  // Each gathered row moves in the widest unit its size and the pointers allow.
  const size_t w = std::max(es, widest_unit(size_t(inner_bytes), {x.data, y.data}));
  const int64_t inner = inner_bytes / int64_t(w), total = outer * nidx * inner;
  return dispatch(c, w, ind.dtype, [&](auto u, auto j) {
    using U = decltype(u);
    using J = decltype(j);
    gather_kernel<U, J><<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(x.as<U>(), ind.as<J>(), y.as<U>(), total,
                                                                                   nidx, inner, n);
  });
}

Expected<ElemArgs> elem_args(const LaunchContext& c, const DeviceTensor& data, const DeviceTensor& ind) {
  KILN_ASSIGN_OR_RETURN(int64_t axis, axis_of(c, data.dims.size()));
  if (ind.dims.size() != data.dims.size()) return c.fail("indices must have the rank of data");
  if (data.dims.size() > size_t(kMaxRank)) return c.fail("rank above ", kMaxRank);
  ElemArgs a{int(data.dims.size()), int(axis), {}, {}, data.dims[size_t(axis)]};
  std::vector<int64_t> st = contiguous_strides(data.dims);
  for (size_t d = 0; d < data.dims.size(); ++d) {
    a.idx_dims[d] = ind.dims[d];
    a.data_strides[d] = st[d];
  }
  return a;
}

Status gather_elements(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &ind = c.inputs[1], &y = c.outputs[0];
  KILN_ASSIGN_OR_RETURN(ElemArgs a, elem_args(c, x, ind));
  const int64_t total = ind.numel();
  if (total == 0) return Status::ok();
  return dispatch(c, dtype_size(x.dtype), ind.dtype, [&](auto u, auto j) {
    using U = decltype(u);
    using J = decltype(j);
    gather_elements_kernel<U, J><<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(x.as<U>(), ind.as<J>(), y.as<U>(),
                                                                                            total, a);
  });
}

// Output = data, then the updates written over it.
Status copy_data(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &y = c.outputs[0];
  if (x.data != y.data && x.nbytes())
    KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, c.stream));
  return Status::ok();
}

Status scatter_elements(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &ind = c.inputs[1], &upd = c.inputs[2], &y = c.outputs[0];
  if (ind.dims != upd.dims) return c.fail("indices and updates must have the same shape");
  KILN_ASSIGN_OR_RETURN(ElemArgs a, elem_args(c, x, ind));
  KILN_RETURN_IF_ERROR(copy_data(c));
  const int64_t total = ind.numel();
  if (total == 0) return Status::ok();
  return dispatch(c, dtype_size(x.dtype), ind.dtype, [&](auto u, auto j) {
    using U = decltype(u);
    using J = decltype(j);
    scatter_elements_kernel<U, J><<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(upd.as<U>(), ind.as<J>(),
                                                                                             y.as<U>(), total, a);
  });
}

// GatherND (batch_dims b) and ScatterND (b = 0): tuple offsets in units of the widened slice.
Status nd(LaunchContext& c, bool scatter) {
  const DeviceTensor &x = c.inputs[0], &ind = c.inputs[1], &y = c.outputs[0];
  const int64_t b = scatter ? 0 : c.node.attr_int("batch_dims", 0);
  if (ind.dims.empty()) return c.fail("indices must have rank >= 1");
  const int64_t k = ind.dims.back();
  if (k < 0 || k > kMaxRank || b + k > int64_t(x.dims.size())) return c.fail("bad index tuple length ", k);
  const size_t es = dtype_size(x.dtype);
  const int64_t slice_bytes = product(x.dims, size_t(b + k), x.dims.size()) * int64_t(es);
  const DeviceTensor& moved = scatter ? c.inputs[2] : y;
  if (scatter) KILN_RETURN_IF_ERROR(copy_data(c));
  if (slice_bytes == 0 || moved.numel() == 0) return Status::ok();
  const size_t w = std::max(es, widest_unit(size_t(slice_bytes), {x.data, y.data, moved.data}));
  const int64_t f = int64_t(w / es);  // elements per unit
  std::vector<int64_t> st = contiguous_strides(x.dims);
  NdArgs a{int(k), product(ind.dims, size_t(b), ind.dims.size() - 1), b > 0 ? st[size_t(b - 1)] / f : 0,
           slice_bytes / int64_t(w), {}, {}};
  for (int64_t j = 0; j < k; ++j) {
    a.dims[j] = x.dims[size_t(b + j)];
    a.strides[j] = st[size_t(b + j)] / f;
  }
  const int64_t total = moved.nbytes() / int64_t(w);
  return dispatch(c, w, ind.dtype, [&](auto u, auto j) {
    using U = decltype(u);
    using J = decltype(j);
    const int64_t grid = cuda_grid_for(total, kThreads);
    if (scatter) nd_kernel<U, J, true><<<grid, kThreads, 0, c.stream>>>(c.inputs[2].as<U>(), ind.as<J>(), y.as<U>(), total, a);
    else nd_kernel<U, J, false><<<grid, kThreads, 0, c.stream>>>(x.as<U>(), ind.as<J>(), y.as<U>(), total, a);
  });
}

Status gather_nd(LaunchContext& c) { return nd(c, false); }
Status scatter_nd(LaunchContext& c) { return nd(c, true); }

// OneHot: out [outer, depth, inner] = values[1] where indices[outer, inner] (truncated, negative
// counting from depth) equals the depth coordinate, else values[0]. Depth is the output's dim,
// and the off/on values are read on the device, so no host value is needed.
template <class U, class J>
__global__ void one_hot_kernel(const J* __restrict__ idx, const U* __restrict__ values, U* __restrict__ out, int64_t total,
                               int64_t depth, int64_t inner) {
  const U off = values[0], on = values[1];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / inner, r = i - t * inner, o = t / depth, d = t - o * depth;
    int64_t v = int64_t(idx[o * inner + r]);
    if (v < 0) v += depth;
    out[i] = v == d ? on : off;
  }
}

Status one_hot(LaunchContext& c) {
  const DeviceTensor &ind = c.inputs[0], &vals = c.inputs[2], &y = c.outputs[0];
  if (vals.numel() != 2) return c.fail("values must hold 2 elements");
  int64_t axis = c.node.attr_int("axis", -1);
  if (axis < 0) axis += int64_t(y.dims.size());
  if (axis < 0 || axis >= int64_t(y.dims.size())) return c.fail("axis out of range");
  const int64_t depth = y.dims[size_t(axis)], inner = product(y.dims, size_t(axis) + 1, y.dims.size());
  const int64_t total = y.numel();
  if (total == 0) return Status::ok();
  auto go = [&](auto j) {
    using J = decltype(j);
    return dispatch(c, dtype_size(vals.dtype), DataType::kInt64, [&](auto u, auto) {
      using U = decltype(u);
      one_hot_kernel<U, J><<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(ind.as<J>(), vals.as<U>(), y.as<U>(),
                                                                                      total, depth, inner);
    });
  };
  switch (ind.dtype) {
    case DataType::kInt64: return go(int64_t{});
    case DataType::kInt32: return go(int32_t{});
    case DataType::kFloat32: return go(float{});
    default: return c.fail("indices of type ", dtype_name(ind.dtype));
  }
}

bool int_indices(const Value* v) { return v && (v->dtype == DataType::kInt64 || v->dtype == DataType::kInt32); }

Support check_indexed(const Node& n) {
  Support s = byte_types(n);
  if (!s.ok) return s;
  if (n.inputs.size() < 2 || !int_indices(n.inputs[1])) return Support::no("indices are not int32/int64");
  const Value* x = n.inputs[0];
  if (!x->shape.rank_known() || x->shape.rank() > size_t(kMaxRank)) return Support::no("data rank unknown or above 8");
  return Support::yes();
}

Support check_scatter(const Node& n) {
  Support s = check_indexed(n);
  if (!s.ok) return s;
  if (n.attr_string("reduction", "none") != "none") return Support::no("scatter reductions run on the CPU");
  return Support::yes();
}

Support check_one_hot(const Node& n) {
  Support s = byte_types(n);
  if (!s.ok) return s;
  const Value* i = n.inputs[0];
  if (!i || (i->dtype != DataType::kInt64 && i->dtype != DataType::kInt32 && i->dtype != DataType::kFloat32))
    return Support::no("indices type");
  return Support::yes();
}

}  // namespace

void register_gather_kernels(CudaKernelTable& t) {
  t.add({"", "Gather", "cuda.data_movement", gather, check_indexed});
  t.add({"", "GatherElements", "cuda.data_movement", gather_elements, check_indexed});
  t.add({"", "GatherND", "cuda.data_movement", gather_nd, check_indexed});
  t.add({"", "ScatterND", "cuda.data_movement", scatter_nd, check_scatter});
  t.add({"", "ScatterElements", "cuda.data_movement", scatter_elements, check_scatter});
  t.add({"", "Scatter", "cuda.data_movement", scatter_elements, check_scatter});
  t.add({"", "OneHot", "cuda.data_movement", one_hot, check_one_hot});
}

}  // namespace dm
}  // namespace kiln::cuda
