// CUDA kernels of the reduce family that walk one axis: ArgMax/ArgMin (int64 indices; ties keep
// the first index, or the last with select_last_index) and CumSum (inclusive/exclusive, from
// either end). The input is viewed as [outer, n, inner] around the axis.
#include "backends/cuda/kernels/reduce_common.cuh"

namespace kiln::cuda {

namespace {

using namespace red;

// Whether candidate (v, j) beats the current best (bv, bj); `max` picks ArgMax, `last` the
// tie rule. Combining partial results from any split of the axis gives the sequential answer.
template <bool max, class C>
__device__ __forceinline__ bool beats(C v, int64_t j, C bv, int64_t bj, bool last) {
  if (max ? v > bv : v < bv) return true;
  if (v == bv) return last ? j > bj : j < bj;
  return false;
}

// inner == 1: one warp per row.
template <bool max, class T>
__global__ void arg_rows(const T* x, int64_t* y, int64_t rows, int64_t n, bool last) {
  using C = compute_t<T>;
  const int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const T* p = x + row * n;
  C bv = ld(p, 0);
  int64_t bj = 0;
  for (int64_t j = lane; j < n; j += 32) {
    const C v = ld(p, j);
    if (j == 0 || beats<max>(v, j, bv, bj, last)) { bv = v; bj = j; }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const C ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int64_t oj = __shfl_xor_sync(0xffffffffu, bj, o);
    if (beats<max>(ov, oj, bv, bj, last)) { bv = ov; bj = oj; }
  }
  if (lane == 0) y[row] = bj;
}

// inner > 1: one thread per (outer, inner) column; adjacent threads read adjacent elements.
template <bool max, class T>
__global__ void arg_cols(const T* x, int64_t* y, int64_t outer, int64_t n, int64_t inner, bool last) {
  using C = compute_t<T>;
  const int64_t total = outer * inner;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = k / inner, i = k - o * inner;
    const T* p = x + o * n * inner + i;
    C bv = ld(p, 0);
    int64_t bj = 0;
    for (int64_t j = 1; j < n; ++j) {
      const C v = ld(p, j * inner);
      if (beats<max>(v, j, bv, bj, last)) { bv = v; bj = j; }
    }
    y[k] = bj;
  }
}

struct Layout { int64_t outer = 1, n = 1, inner = 1; };

Layout around(const std::vector<int64_t>& dims, int64_t axis) {
  Layout l;
  for (int64_t d = 0; d < static_cast<int64_t>(dims.size()); ++d)
    (d < axis ? l.outer : d == axis ? l.n : l.inner) *= dims[d];
  return l;
}

template <bool max, class T>
void launch_arg(const LaunchContext& c, const Layout& l, bool last) {
  const T* x = c.inputs[0].as<T>();
  int64_t* y = c.outputs[0].as<int64_t>();
  if (l.inner == 1) {
    arg_rows<max, T><<<(l.outer * 32 + 255) / 256, 256, 0, c.stream>>>(x, y, l.outer, l.n, last);
  } else {
    arg_cols<max, T><<<cuda_grid_for(l.outer * l.inner, 256), 256, 0, c.stream>>>(x, y, l.outer, l.n, l.inner, last);
  }
}

template <bool max>
Status arg(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = c.node.attr_int("axis", 0);
  if (axis < -rank || axis >= rank) return c.fail("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  const Layout l = around(x.dims, axis);
  if (l.outer * l.inner == 0) return Status::ok();
  if (l.n == 0) return c.fail("cannot take ", c.node.op_type, " over an empty axis");
  const bool last = c.node.attr_int("select_last_index", 0) != 0;
  switch (x.dtype) {
    case DataType::kFloat32: launch_arg<max, float>(c, l, last); break;
    case DataType::kFloat16: launch_arg<max, __half>(c, l, last); break;
    case DataType::kBFloat16: launch_arg<max, __nv_bfloat16>(c, l, last); break;
    case DataType::kFloat64: launch_arg<max, double>(c, l, last); break;
    case DataType::kInt32: launch_arg<max, int32_t>(c, l, last); break;
    case DataType::kInt64: launch_arg<max, int64_t>(c, l, last); break;
    default: return c.fail("no CUDA kernel for type ", dtype_name(x.dtype));
  }
  return Status::ok();
}

Support check_arg(const Node& n) {
  if (n.inputs.empty() || !n.inputs[0]) return Support::no("no input");
  return float_or_int_type(n.inputs[0]->dtype, true, true);
}

// CumSum: one thread per line along the axis (the axis is tiny next to the lines in practice:
// position ids, masks). The axis comes by value when the host knows it, else it is read on the
// device from the axis input (no host sync), with the layout derived there.
struct ScanArgs {
  int rank;
  int64_t dims[kMaxRank];
  int64_t axis;          // >= 0: known; else read from axis_ptr
  const void* axis_ptr;  // int32 or int64 scalar on the device
  bool axis_is_64, exclusive, reverse;
};

template <class T>
__global__ void cumsum_lines(const T* x, T* y, int64_t total, ScanArgs a) {
  using C = compute_t<T>;
  int64_t axis = a.axis;
  if (axis < 0) {
    axis = a.axis_is_64 ? *static_cast<const int64_t*>(a.axis_ptr) : *static_cast<const int32_t*>(a.axis_ptr);
    if (axis < 0) axis += a.rank;
    if (axis < 0 || axis >= a.rank) return;  // the CPU kernel rejects it; nothing sane to write
  }
  int64_t n = 1, inner = 1;
  for (int d = 0; d < a.rank; ++d) {
    if (d == axis) n = a.dims[d];
    else if (d > axis) inner *= a.dims[d];
  }
  if (n == 0) return;
  const int64_t lines = total / n;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < lines; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = k / inner, i = k - o * inner;
    const int64_t base = o * n * inner + i;
    C acc = 0;
    for (int64_t s = 0; s < n; ++s) {
      const int64_t off = base + (a.reverse ? n - 1 - s : s) * inner;
      const C v = ld(x, off);
      if (!a.exclusive) acc += v;
      st(y, off, acc);
      if (a.exclusive) acc += v;
    }
  }
}

Status cumsum(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  if (x.dims.size() > kMaxRank || x.dims.empty()) return c.fail("CUDA CumSum takes ranks 1 to 8");
  ScanArgs a{static_cast<int>(x.dims.size()), {}, -1, nullptr, false, false, false};
  for (size_t d = 0; d < x.dims.size(); ++d) a.dims[d] = x.dims[d];
  a.exclusive = c.node.attr_int("exclusive", 0) != 0;
  a.reverse = c.node.attr_int("reverse", 0) != 0;
  const int64_t rank = a.rank;
  if (const Tensor* h = c.host_inputs[1]) {
    if (h->numel() != 1) return c.fail("axis must hold one value");
    int64_t axis = h->get_as_int64(0);
    if (axis < -rank || axis >= rank) return c.fail("axis ", axis, " is out of range for rank ", rank);
    a.axis = axis < 0 ? axis + rank : axis;
  } else {
    a.axis_ptr = c.inputs[1].data;
    a.axis_is_64 = c.inputs[1].dtype == DataType::kInt64;
  }
  const int64_t total = x.numel();
  if (total == 0) return Status::ok();
  const int64_t grid = cuda_grid_for(total, 256);  // upper bound on lines; extra threads exit
  switch (x.dtype) {
    case DataType::kFloat32: cumsum_lines<float><<<grid, 256, 0, c.stream>>>(x.as<float>(), c.outputs[0].as<float>(), total, a); break;
    case DataType::kFloat16: cumsum_lines<__half><<<grid, 256, 0, c.stream>>>(x.as<__half>(), c.outputs[0].as<__half>(), total, a); break;
    case DataType::kBFloat16:
      cumsum_lines<__nv_bfloat16><<<grid, 256, 0, c.stream>>>(x.as<__nv_bfloat16>(), c.outputs[0].as<__nv_bfloat16>(), total, a);
      break;
    case DataType::kFloat64: cumsum_lines<double><<<grid, 256, 0, c.stream>>>(x.as<double>(), c.outputs[0].as<double>(), total, a); break;
    case DataType::kInt32: cumsum_lines<int32_t><<<grid, 256, 0, c.stream>>>(x.as<int32_t>(), c.outputs[0].as<int32_t>(), total, a); break;
    case DataType::kInt64: cumsum_lines<int64_t><<<grid, 256, 0, c.stream>>>(x.as<int64_t>(), c.outputs[0].as<int64_t>(), total, a); break;
    default: return c.fail("no CUDA kernel for type ", dtype_name(x.dtype));
  }
  return Status::ok();
}

Support check_cumsum(const Node& n) {
  if (n.inputs.size() < 2 || !n.inputs[0] || !n.inputs[1]) return Support::no("missing input");
  Support s = float_or_int_type(n.inputs[0]->dtype, true, true);
  if (!s.ok) return s;
  const DataType at = n.inputs[1]->dtype;
  if (at != DataType::kInt32 && at != DataType::kInt64) return Support::no("axis type");
  if (!n.inputs[0]->shape.rank_known() || n.inputs[0]->shape.rank() == 0) return Support::no("rank unknown or 0");
  return rank_at_most_8(n.inputs[0]);
}

}  // namespace

void register_cuda_reduce_arg_kernels(CudaKernelTable& t) {
  t.add({"", "ArgMax", "cuda.reduce", arg<true>, check_arg});
  t.add({"", "ArgMin", "cuda.reduce", arg<false>, check_arg});
  t.add({"", "CumSum", "cuda.reduce", cumsum, check_cumsum});
}

}  // namespace kiln::cuda
