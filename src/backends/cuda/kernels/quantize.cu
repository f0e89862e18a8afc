// CUDA kernels of QuantizeLinear and DequantizeLinear: 8-bit integer data (and int32 for the
// dequantized bias), float32/float16/bfloat16 on the float side, per tensor or per axis. The
// results equal the CPU's (src/backends/cpu/kernels/quantize.cc) bit for bit: quantize is x / scale in float (IEEE
// division), rounded half to even, plus the zero point, clipped to the type (NaN -> 0);
// dequantize is (x - zero point) * scale in float, rounded once to the output type. Blocked
// scales, float8/int4 data and other types run on the CPU (check() says which).
#include "backends/cuda/kernels/elementwise_common.cuh"

namespace kiln::cuda {

namespace {

using namespace ew;

// The element types these kernels read and write, switched on at run time (one kernel each for
// quantize and dequantize instead of one per type combination; the branch is uniform).
enum Kind : int { kKF32, kKF16, kKBF16, kKS8, kKU8, kKS32 };
int kind_of(DataType t) {
  switch (t) {
    case DataType::kFloat32: return kKF32;
    case DataType::kFloat16: return kKF16;
    case DataType::kBFloat16: return kKBF16;
    case DataType::kInt8: return kKS8;
    case DataType::kUInt8: return kKU8;
    case DataType::kInt32: return kKS32;
    default: return -1;
  }
}

__device__ __forceinline__ float load(const void* p, int kind, int64_t i) {
  switch (kind) {
    case kKF32: return static_cast<const float*>(p)[i];
    case kKF16: return __half2float(static_cast<const __half*>(p)[i]);
    case kKBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case kKS8: return float(static_cast<const int8_t*>(p)[i]);
    case kKU8: return float(static_cast<const uint8_t*>(p)[i]);
    default: return float(static_cast<const int32_t*>(p)[i]);  // round to nearest, as the CPU's float(x)
  }
}

struct QArgs {
  const void* x = nullptr;
  const void* s = nullptr;
  const void* z = nullptr;  // null: zero point 0
  void* y = nullptr;
  int xk = 0, sk = 0, zk = 0, yk = 0;
  int64_t n = 0, inner = 1, extent = 1;  // per axis: parameter index (i / inner) % extent
  bool per_axis = false;
};

__device__ __forceinline__ int64_t param_index(const QArgs& a, int64_t i) {
  return a.per_axis ? (i / a.inner) % a.extent : 0;
}

// x / scale in float, half to even, + zero point, clipped to int8/uint8; NaN -> 0.
__global__ void quantize_kernel(QArgs a) {
  const float lo = a.yk == kKS8 ? -128.f : 0.f, hi = a.yk == kKS8 ? 127.f : 255.f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < a.n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = param_index(a, i);
    const float v = __fdiv_rn(load(a.x, a.xk, i), load(a.s, a.sk, k));
    const float z = a.z ? load(a.z, a.zk, k) : 0.f;
    const float r = isnan(v) ? 0.f : fminf(fmaxf(rintf(v) + z, lo), hi);  // rintf(v) + z exact below 2^24
    if (a.yk == kKS8) static_cast<int8_t*>(a.y)[i] = int8_t(r);
    else static_cast<uint8_t*>(a.y)[i] = uint8_t(r);
  }
}

// (x - zero point) * scale in float, rounded once to the output type.
__global__ void dequantize_kernel(QArgs a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < a.n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = param_index(a, i);
    const float z = a.z ? load(a.z, a.zk, k) : 0.f;
    const float v = __fmul_rn(__fsub_rn(load(a.x, a.xk, i), z), load(a.s, a.sk, k));
    switch (a.yk) {
      case kKF32: static_cast<float*>(a.y)[i] = v; break;
      case kKF16: static_cast<__half*>(a.y)[i] = __float2half_rn(v); break;
      default: static_cast<__nv_bfloat16*>(a.y)[i] = __float2bfloat16_rn(v); break;
    }
  }
}

// The launch arguments: per tensor (one-element scale) or per axis (a 1-D scale with x's
// extent on `axis`); the zero point, when given, has the scale's size.
Expected<QArgs> args_of(const LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &s = c.inputs[1], &y = c.outputs[0];
  QArgs a;
  a.x = x.data;
  a.s = s.data;
  a.y = y.data;
  a.n = y.numel();
  a.xk = kind_of(x.dtype);
  a.sk = kind_of(s.dtype);
  a.yk = kind_of(y.dtype);
  if (c.has_input(2)) {
    a.z = c.inputs[2].data;
    a.zk = kind_of(c.inputs[2].dtype);
    if (c.inputs[2].numel() != s.numel()) return err("zero point and scale differ in size");
  }
  if (s.numel() == 1) return a;
  const int64_t rank = int64_t(x.dims.size());
  int64_t axis = c.node.attr_int("axis", 1);
  if (axis < -rank || axis >= rank) return err("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  if (s.dims.size() != 1 || s.dims[0] != x.dims[axis])
    return err("a per-axis scale must have ", x.dims[axis], " values (axis ", axis, "), got ", s.numel());
  a.per_axis = true;
  a.extent = x.dims[axis];
  for (int64_t d = axis + 1; d < rank; ++d) a.inner *= x.dims[d];
  return a;
}

template <bool quantize>
Status run(LaunchContext& c) {
  auto a = args_of(c);
  if (!a) return c.fail(a.status().message());
  if (a->n == 0) return Status::ok();
  const int64_t grid = cuda_grid_for(a->n, kThreads);
  if (quantize) quantize_kernel<<<grid, kThreads, 0, c.stream>>>(*a);
  else dequantize_kernel<<<grid, kThreads, 0, c.stream>>>(*a);
  return Status::ok();
}

constexpr uint32_t kQuantData = kI8 | kU8;
constexpr uint32_t kHalfFloats = kF32 | kF16 | kBF16;

// Shared conditions: no blocked quantization, a scalar or 1-D scale (and zero point) of a float
// type the data's float side can take.
Support check_params(const Node& n) {
  if (Support g = cuda_int8_gate(); !g.ok) return g;
  if (n.attr_int("block_size", 0) != 0) return Support::no("blocked quantization (block_size)");
  if (n.inputs.size() < 2 || !n.inputs[1]) return Support::no("no scale");
  const Shape& s = n.inputs[1]->shape;
  if (!s.rank_known() || s.rank() > 1) return Support::no("a scale of rank above 1");
  if ((type_bit(n.inputs[1]->dtype) & kHalfFloats) == 0)
    return Support::no(std::string("scale of type ") + dtype_name(n.inputs[1]->dtype));
  return Support::yes();
}

Support check_quantize(const Node& n) {
  Support p = check_params(n);
  if (!p.ok) return p;
  const DataType y = n.outputs[0]->dtype;
  if ((type_bit(y) & kQuantData) == 0) return Support::no(std::string("quantized type ") + dtype_name(y) + " (int8/uint8 run on CUDA)");
  if (n.inputs.size() > 2 && n.inputs[2] && n.inputs[2]->dtype != y) return Support::no("zero point of another type than y");
  return check_types(n, {{0, kHalfFloats}});
}

Support check_dequantize(const Node& n) {
  Support p = check_params(n);
  if (!p.ok) return p;
  const DataType x = n.inputs[0]->dtype;
  if ((type_bit(x) & (kQuantData | kI32)) == 0)
    return Support::no(std::string("quantized type ") + dtype_name(x) + " (int8/uint8/int32 run on CUDA)");
  if (n.inputs.size() > 2 && n.inputs[2] && n.inputs[2]->dtype != x) return Support::no("zero point of another type than x");
  return check_types(n, {{-1, kHalfFloats}});
}

}  // namespace

void register_cuda_quantize_kernels(CudaKernelTable& t) {
  t.add({"", "QuantizeLinear", "cuda.quantize", run<true>, check_quantize});
  t.add({"", "DequantizeLinear", "cuda.quantize", run<false>, check_dequantize});
}

}  // namespace kiln::cuda
