// CUDA kernels of the elementwise family: one broadcasting binary kernel (with a contiguous,
// vectorizable fast path when the shapes are equal) and one unary map, for float32, float16
// and bfloat16; the math runs in float.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backends/cuda/launch.h"

namespace kiln::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxRank = 8;

struct BroadcastIndex {
  int rank;
  int64_t out_dims[kMaxRank];
  int64_t a_strides[kMaxRank], b_strides[kMaxRank];
};

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__half* p, int64_t i, float v) { p[i] = __float2half(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16(v); }

enum class BinOp { kAdd, kSub, kMul, kDiv };
enum class UnOp { kRelu, kSigmoid, kTanh, kNeg, kExp };

template <BinOp op>
__device__ __forceinline__ float apply(float a, float b) {
  if constexpr (op == BinOp::kAdd) return a + b;
  if constexpr (op == BinOp::kSub) return a - b;
  if constexpr (op == BinOp::kMul) return a * b;
  return a / b;
}

template <UnOp op>
__device__ __forceinline__ float apply(float x) {
  if constexpr (op == UnOp::kRelu) return x > 0.f ? x : 0.f;
  if constexpr (op == UnOp::kSigmoid) return 1.f / (1.f + __expf(-x));
  if constexpr (op == UnOp::kTanh) return tanhf(x);
  if constexpr (op == UnOp::kNeg) return -x;
  return __expf(x);
}

template <BinOp op, class T>
__global__ void binary_same_shape(const T* a, const T* b, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    store(y, i, apply<op>(load(a, i), load(b, i)));
}

template <BinOp op, class T>
__global__ void binary_broadcast(const T* a, const T* b, T* y, int64_t n, BroadcastIndex ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i, ao = 0, bo = 0;
    for (int d = ix.rank - 1; d >= 0; --d) {
      int64_t c = rem % ix.out_dims[d];
      rem /= ix.out_dims[d];
      ao += c * ix.a_strides[d];
      bo += c * ix.b_strides[d];
    }
    store(y, i, apply<op>(load(a, ao), load(b, bo)));
  }
}

template <UnOp op, class T>
__global__ void unary(const T* x, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    store(y, i, apply<op>(load(x, i)));
}

void strides_into(const std::vector<int64_t>& in, const std::vector<int64_t>& out, int64_t* s) {
  size_t lead = out.size() - in.size();
  int64_t stride = 1;
  for (size_t k = out.size(); k-- > 0;) {
    if (k < lead) { s[k] = 0; continue; }
    int64_t d = in[k - lead];
    s[k] = d == 1 ? 0 : stride;
    stride *= d;
  }
}

template <BinOp op, class T>
Status launch_binary(LaunchContext& c) {
  const DeviceTensor &a = c.inputs[0], &b = c.inputs[1], &y = c.outputs[0];
  int64_t n = y.numel();
  if (n == 0) return Status::ok();
  int64_t grid = cuda_grid_for(n, kThreads);
  if (a.dims == y.dims && b.dims == y.dims) {
    binary_same_shape<op, T><<<grid, kThreads, 0, c.stream>>>(a.as<T>(), b.as<T>(), y.as<T>(), n);
    return Status::ok();
  }
  if (y.dims.size() > kMaxRank) return c.fail("rank ", y.dims.size(), " is above the CUDA kernel's limit of ", kMaxRank);
  BroadcastIndex ix{static_cast<int>(y.dims.size()), {}, {}, {}};
  for (size_t k = 0; k < y.dims.size(); ++k) ix.out_dims[k] = y.dims[k];
  strides_into(a.dims, y.dims, ix.a_strides);
  strides_into(b.dims, y.dims, ix.b_strides);
  binary_broadcast<op, T><<<grid, kThreads, 0, c.stream>>>(a.as<T>(), b.as<T>(), y.as<T>(), n, ix);
  return Status::ok();
}

template <BinOp op>
Status binary(LaunchContext& c) {
  switch (c.outputs[0].dtype) {
    case DataType::kFloat32: return launch_binary<op, float>(c);
    case DataType::kFloat16: return launch_binary<op, __half>(c);
    case DataType::kBFloat16: return launch_binary<op, __nv_bfloat16>(c);
    default: return c.fail("no CUDA kernel for type ", dtype_name(c.outputs[0].dtype));
  }
}

template <UnOp op>
Status unary_op(LaunchContext& c) {
  int64_t n = c.outputs[0].numel();
  if (n == 0) return Status::ok();
  int64_t grid = cuda_grid_for(n, kThreads);
  switch (c.outputs[0].dtype) {
    case DataType::kFloat32: unary<op, float><<<grid, kThreads, 0, c.stream>>>(c.inputs[0].as<float>(), c.outputs[0].as<float>(), n); break;
    case DataType::kFloat16: unary<op, __half><<<grid, kThreads, 0, c.stream>>>(c.inputs[0].as<__half>(), c.outputs[0].as<__half>(), n); break;
    case DataType::kBFloat16:
      unary<op, __nv_bfloat16><<<grid, kThreads, 0, c.stream>>>(c.inputs[0].as<__nv_bfloat16>(), c.outputs[0].as<__nv_bfloat16>(), n);
      break;
    default: return c.fail("no CUDA kernel for type ", dtype_name(c.outputs[0].dtype));
  }
  return Status::ok();
}

// Build-time check: the float types these kernels cover (others run on the CPU fallback).
Support float_types(const Node& n) {
  const Value* out = n.outputs.empty() ? nullptr : n.outputs[0];
  if (!out) return Support::no("no output");
  DataType t = out->dtype;
  if (t == DataType::kFloat32 || t == DataType::kFloat16 || t == DataType::kBFloat16) return Support::yes();
  return Support::no(std::string("element type ") + dtype_name(t));
}

}  // namespace

void register_cuda_elementwise_kernels(CudaKernelTable& t) {
  t.add({"", "Add", "cuda.elementwise", binary<BinOp::kAdd>, float_types});
  t.add({"", "Sub", "cuda.elementwise", binary<BinOp::kSub>, float_types});
  t.add({"", "Mul", "cuda.elementwise", binary<BinOp::kMul>, float_types});
  t.add({"", "Div", "cuda.elementwise", binary<BinOp::kDiv>, float_types});
  t.add({"", "Relu", "cuda.elementwise", unary_op<UnOp::kRelu>, float_types});
  t.add({"", "Sigmoid", "cuda.elementwise", unary_op<UnOp::kSigmoid>, float_types});
  t.add({"", "Tanh", "cuda.elementwise", unary_op<UnOp::kTanh>, float_types});
  t.add({"", "Neg", "cuda.elementwise", unary_op<UnOp::kNeg>, float_types});
  t.add({"", "Exp", "cuda.elementwise", unary_op<UnOp::kExp>, float_types});
}

}  // namespace kiln::cuda
