// CUDA kernels of the data_movement family, part 4: Pad (constant / edge / reflect), Trilu,
// and the fills ConstantOfShape, EyeLike, Range. Scalars that only set values (Pad's constant,
// Trilu's k, Range's start and delta) are read on the device, so these ops need no host value;
// Pad's pads do (they place the data), read as the CPU does (full_pads in shape_params).
#include <cstring>

#include "backends/cuda/kernels/data_movement_common.h"
#include "ir/ops/shape_params.h"

namespace kiln::cuda {
namespace dm {

namespace {

template <class U>
__device__ __forceinline__ U zero_unit() {
  U z;
  memset(&z, 0, sizeof(U));
  return z;
}

enum class PadMode { kConstant, kEdge, kReflect };

struct PadArgs {
  int rank;
  PadMode mode;
  int64_t out_dims[kMaxRank], in_dims[kMaxRank], in_strides[kMaxRank], begin[kMaxRank];
  unsigned long long fill_bits;  // the constant when there is no value input
};

// Same mapping as the CPU's pad_source: output coordinate -> input coordinate, -1 = constant.
__device__ __forceinline__ int64_t pad_source(int64_t i, int64_t n, PadMode m) {
  if (i >= 0 && i < n) return i;
  if (m == PadMode::kEdge) return i < 0 ? 0 : n - 1;
  if (m == PadMode::kReflect) {
    if (n == 1) return 0;
    const int64_t period = 2 * (n - 1);
    int64_t j = ((i % period) + period) % period;
    return j < n ? j : period - j;
  }
  return -1;
}

template <class U>
__global__ void pad_kernel(const U* __restrict__ x, const U* __restrict__ value, U* __restrict__ y, int64_t total, PadArgs a) {
  U fill;
  if (value) fill = value[0];
  else memcpy(&fill, &a.fill_bits, sizeof(U));
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i, off = 0;
    bool inside = true;
    for (int d = a.rank - 1; d >= 0; --d) {
      const int64_t q = rem / a.out_dims[d], coord = rem - q * a.out_dims[d];
      rem = q;
      const int64_t s = pad_source(coord - a.begin[d], a.in_dims[d], a.mode);
      inside = inside && s >= 0;
      off += s * a.in_strides[d];
    }
    y[i] = inside ? x[off] : fill;
  }
}

// The constant's bytes from a float attribute (opsets before 11), in the output type.
unsigned long long float_bits(double v, DataType t) {
  unsigned long long b = 0;
  auto put = [&](auto x) { std::memcpy(&b, &x, sizeof(x)); };
  switch (t) {
    case DataType::kFloat32: put(float(v)); break;
    case DataType::kFloat64: put(v); break;
    case DataType::kFloat16: put(Half(float(v))); break;
    case DataType::kBFloat16: put(BFloat16(float(v))); break;
    case DataType::kInt8: put(int8_t(v)); break;
    case DataType::kUInt8: put(uint8_t(v)); break;
    case DataType::kInt16: put(int16_t(v)); break;
    case DataType::kUInt16: put(uint16_t(v)); break;
    case DataType::kInt32: put(int32_t(v)); break;
    case DataType::kUInt32: put(uint32_t(v)); break;
    case DataType::kInt64: put(int64_t(v)); break;
    case DataType::kUInt64: put(uint64_t(v)); break;
    case DataType::kBool: put(uint8_t(v != 0)); break;
    default: break;
  }
  return b;
}

template <class F>
Status by_size(LaunchContext& c, size_t es, F&& f) {
  switch (es) {
    case 1: f(uint8_t{}); return Status::ok();
    case 2: f(uint16_t{}); return Status::ok();
    case 4: f(uint32_t{}); return Status::ok();
    case 8: f((unsigned long long)0); return Status::ok();
    default: return c.fail("element size ", es, " is not supported");
  }
}

Status pad(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &y = c.outputs[0];
  const std::string mode = c.node.attr_string("mode", "constant");
  const bool attrs = c.node.opset < 11;
  const char* pads_attr = attrs ? (c.node.has_attr("paddings") ? "paddings" : "pads") : nullptr;
  KILN_ASSIGN_OR_RETURN(IntList pads, read_ints(c.node, c.host_inputs, 1, pads_attr));
  KILN_ASSIGN_OR_RETURN(IntList axes, read_ints(c.node, c.host_inputs, 3, nullptr));
  if (!pads.known || (axes.present && !axes.known)) return c.fail("Pad's pads/axes have no host value when the engine runs");
  const int64_t rank = int64_t(x.dims.size());
  if (rank > kMaxRank) return c.fail("rank above ", kMaxRank);
  auto full = full_pads(rank, pads.values, axes);
  if (!full) return c.fail(full.status().message());
  const int64_t total = y.numel();
  if (total == 0) return Status::ok();
  if (mode != "constant" && x.numel() == 0) return c.fail("cannot ", mode, "-pad an empty input");
  PadArgs a{int(rank), mode == "edge" ? PadMode::kEdge : mode == "reflect" ? PadMode::kReflect : PadMode::kConstant, {}, {}, {}, {}, 0};
  std::vector<int64_t> st = contiguous_strides(x.dims);
  for (int64_t d = 0; d < rank; ++d) {
    a.out_dims[d] = y.dims[size_t(d)];
    a.in_dims[d] = x.dims[size_t(d)];
    a.in_strides[d] = st[size_t(d)];
    a.begin[d] = (*full)[size_t(d)];
  }
  const void* value = nullptr;
  if (attrs) a.fill_bits = float_bits(c.node.attr_float("value", 0.0f), y.dtype);
  else if (c.has_input(2) && c.inputs[2].numel() > 0) value = c.inputs[2].data;  // same type as x
  return by_size(c, dtype_size(y.dtype), [&](auto u) {
    using U = decltype(u);
    pad_kernel<U><<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(x.as<U>(), static_cast<const U*>(value),
                                                                              y.as<U>(), total, a);
  });
}

// Trilu: upper keeps j - i >= k, lower keeps j - i <= k; the rest is zero.
template <class U>
__global__ void trilu_kernel(const U* __restrict__ x, const int64_t* __restrict__ kp, U* __restrict__ y, int64_t total,
                             int64_t rows, int64_t cols, bool upper) {
  const int64_t k = kp ? kp[0] : 0;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t rc = e % (rows * cols), i = rc / cols, j = rc - i * cols;
    const bool keep = upper ? j - i >= k : j - i <= k;
    y[e] = keep ? x[e] : zero_unit<U>();
  }
}

Status trilu(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &y = c.outputs[0];
  if (x.dims.size() < 2) return c.fail("input rank must be at least 2");
  const int64_t rows = x.dims[x.dims.size() - 2], cols = x.dims.back(), total = x.numel();
  if (total == 0) return Status::ok();
  const int64_t* kp = c.has_input(1) && c.inputs[1].numel() > 0 ? c.inputs[1].as<int64_t>() : nullptr;
  const bool upper = c.node.attr_int("upper", 1) != 0;
  return by_size(c, dtype_size(y.dtype), [&](auto u) {
    using U = decltype(u);
    trilu_kernel<U><<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(x.as<U>(), kp, y.as<U>(), total, rows, cols, upper);
  });
}

// Fills: out[i] = bits, or for EyeLike bits on the diagonal k and zero elsewhere.
template <class U>
__global__ void fill_kernel(U* __restrict__ y, int64_t total, unsigned long long bits, int64_t cols, int64_t k, bool eye) {
  U v;
  memcpy(&v, &bits, sizeof(U));
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    if (!eye) { y[e] = v; continue; }
    const int64_t r = e / cols, col = e - r * cols;
    y[e] = col == r + k ? v : zero_unit<U>();
  }
}

Status fill(LaunchContext& c, unsigned long long bits, int64_t cols, int64_t k, bool eye) {
  const DeviceTensor& y = c.outputs[0];
  const int64_t total = y.numel();
  if (total == 0) return Status::ok();
  if (!eye && bits == 0) {
    KILN_CUDA_CHECK(cudaMemsetAsync(y.data, 0, y.nbytes(), c.stream));
    return Status::ok();
  }
  return by_size(c, dtype_size(y.dtype), [&](auto u) {
    using U = decltype(u);
    fill_kernel<U><<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(y.as<U>(), total, bits, cols, k, eye);
  });
}

Status constant_of_shape(LaunchContext& c) {
  unsigned long long bits = 0;
  if (const Tensor* v = c.node.attr_tensor("value")) {
    if (v->nbytes() != dtype_size(c.outputs[0].dtype) || v->nbytes() > 8) return c.fail("value is not one element of the output type");
    std::memcpy(&bits, v->raw(), v->nbytes());
  }
  return fill(c, bits, 0, 0, false);
}

Status eye_like(LaunchContext& c) {
  const DeviceTensor& y = c.outputs[0];
  if (y.dims.size() != 2) return c.fail("EyeLike needs a 2-D output");
  return fill(c, float_bits(1.0, y.dtype), y.dims[1], c.node.attr_int("k", 0), true);
}

// Range: start + i * delta in the compute type (not repeated addition), like the CPU kernel.
template <class T, class C>
__global__ void range_kernel(const T* __restrict__ start, const T* __restrict__ delta, T* __restrict__ y, int64_t total) {
  const C s = C(start[0]), d = C(delta[0]);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = T(s + C(i) * d);
}

Status range(LaunchContext& c) {
  const DeviceTensor& y = c.outputs[0];
  const int64_t total = y.numel();
  if (total == 0) return Status::ok();
  const int64_t grid = cuda_grid_for(total, kThreads);
  auto go = [&](auto t) {
    using T = decltype(t);
    range_kernel<T, T><<<grid, kThreads, 0, c.stream>>>(c.inputs[0].as<T>(), c.inputs[2].as<T>(), y.as<T>(), total);
    return Status::ok();
  };
  switch (y.dtype) {
    case DataType::kFloat32: return go(float{});
    case DataType::kFloat64: return go(double{});
    case DataType::kInt16: return go(int16_t{});
    case DataType::kInt32: return go(int32_t{});
    case DataType::kInt64: return go(int64_t{});
    default: return c.fail("Range of type ", dtype_name(y.dtype));
  }
}

Support check_pad(const Node& n) {
  Support s = byte_types(n);
  if (!s.ok) return s;
  const std::string mode = n.attr_string("mode", "constant");
  if (mode != "constant" && mode != "edge" && mode != "reflect") return Support::no("Pad mode " + mode);
  const Value* x = n.inputs[0];
  if (!x->shape.rank_known() || x->shape.rank() > size_t(kMaxRank)) return Support::no("rank unknown or above 8");
  return Support::yes();
}

Support check_trilu(const Node& n) {
  Support s = byte_types(n);
  if (!s.ok) return s;
  if (n.inputs.size() > 1 && n.inputs[1] && n.inputs[1]->dtype != DataType::kInt64) return Support::no("k is not int64");
  return Support::yes();
}

Support check_eye(const Node& n) {
  Support s = byte_types(n);
  if (!s.ok) return s;
  DataType t = n.outputs[0]->dtype;
  if (float_bits(1.0, t) == 0) return Support::no(std::string("EyeLike of type ") + dtype_name(t));
  return Support::yes();
}

Support check_range(const Node& n) {
  DataType t = n.outputs[0]->dtype;
  if (t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kInt16 || t == DataType::kInt32 || t == DataType::kInt64)
    return Support::yes();
  return Support::no(std::string("Range of type ") + dtype_name(t));
}

}  // namespace

void register_pad_fill_kernels(CudaKernelTable& t) {
  t.add({"", "Pad", "cuda.data_movement", pad, check_pad});
  t.add({"", "Trilu", "cuda.data_movement", trilu, check_trilu});
  t.add({"", "ConstantOfShape", "cuda.data_movement", constant_of_shape, byte_types});
  t.add({"", "EyeLike", "cuda.data_movement", eye_like, check_eye});
  t.add({"", "Range", "cuda.data_movement", range, check_range});
}

}  // namespace dm
}  // namespace kiln::cuda
