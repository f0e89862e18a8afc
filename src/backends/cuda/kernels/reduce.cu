// CUDA kernels of the reduce family: the ten Reduce* ops. The host turns the axes into an
// [outer, reduce, inner] view when the reduced axes are adjacent (after dropping size-1 axes),
// else a general strided layout. Floats accumulate in float, integers in 64 bits (wrapping).
// Every op is an accumulator {a, b} with add/combine/finalize, so one set of kernels serves all.
// ArgMax/ArgMin and CumSum are in reduce_arg.cu, Softmax/LogSoftmax/Hardmax in reduce_softmax.cu.
#include <climits>

#include "backends/cuda/kernels/reduce_common.cuh"
#include "ir/ops/reduce_params.h"

namespace kiln::cuda {

namespace {

using namespace red;

enum class R { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

template <class C>
struct Acc { C a, b; };

template <class C>
__device__ __forceinline__ C wadd(C x, C y) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<unsigned long long>(x) + static_cast<unsigned long long>(y));
  else return x + y;
}
template <class C>
__device__ __forceinline__ C wmul(C x, C y) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<unsigned long long>(x) * static_cast<unsigned long long>(y));
  else return x * y;
}

// Float or double math by the accumulator type.
template <class C> __device__ __forceinline__ C mexp(C x) { if constexpr (std::is_same_v<C, double>) return exp(x); else return expf(x); }
template <class C> __device__ __forceinline__ C mlog(C x) { if constexpr (std::is_same_v<C, double>) return log(x); else return logf(x); }
template <class C> __device__ __forceinline__ C msqrt(C x) { if constexpr (std::is_same_v<C, double>) return sqrt(x); else return sqrtf(x); }

template <R op, class C>
struct Red {
  __device__ static Acc<C> init() {
    if constexpr (op == R::kMax) return {std::is_integral_v<C> ? C(LLONG_MIN) : C(-INFINITY), C(0)};
    if constexpr (op == R::kMin) return {std::is_integral_v<C> ? C(LLONG_MAX) : C(INFINITY), C(0)};
    if constexpr (op == R::kProd) return {C(1), C(0)};
    if constexpr (op == R::kLogSumExp) return {C(-INFINITY), C(0)};
    return {C(0), C(0)};
  }
  __device__ static void add(Acc<C>& s, C x) {
    if constexpr (op == R::kMax) s.a = (x > s.a || x != x) ? x : s.a;  // NaN propagates
    else if constexpr (op == R::kMin) s.a = (x < s.a || x != x) ? x : s.a;
    else if constexpr (op == R::kProd) s.a = wmul(s.a, x);
    else if constexpr (op == R::kL1) s.a = wadd(s.a, x < C(0) ? C(-x) : x);
    else if constexpr (op == R::kL2 || op == R::kSumSquare) s.a = wadd(s.a, wmul(x, x));
    else if constexpr (op == R::kLogSumExp) {  // online max + rescaled sum
      if (x > s.a) { s.b = s.b * mexp(s.a - x) + C(1); s.a = x; }
      else if (s.a != C(-INFINITY)) s.b += mexp(x - s.a);
    } else s.a = wadd(s.a, x);
  }
  __device__ static void combine(Acc<C>& s, const Acc<C>& o) {
    if constexpr (op == R::kMax) s.a = (o.a > s.a || o.a != o.a) ? o.a : s.a;
    else if constexpr (op == R::kMin) s.a = (o.a < s.a || o.a != o.a) ? o.a : s.a;
    else if constexpr (op == R::kProd) s.a = wmul(s.a, o.a);
    else if constexpr (op == R::kLogSumExp) {
      const C m = s.a > o.a ? s.a : o.a;
      if (m == C(-INFINITY)) return;
      s.b = (s.a == C(-INFINITY) ? C(0) : s.b * mexp(s.a - m)) + (o.a == C(-INFINITY) ? C(0) : o.b * mexp(o.a - m));
      s.a = m;
    } else s.a = wadd(s.a, o.a);
  }
  __device__ static C finalize(const Acc<C>& s, int64_t n) {
    if constexpr (op == R::kMean) {
      if constexpr (std::is_integral_v<C>) return n ? C(s.a / n) : C(0);
      else return s.a / static_cast<C>(n);
    }
    if constexpr (op == R::kL2) return msqrt(s.a);
    if constexpr (op == R::kLogSum) return mlog(s.a);
    if constexpr (op == R::kLogSumExp) return isfinite(s.a) ? s.a + mlog(s.b) : s.a;
    return s.a;
  }
  __device__ static Acc<C> shfl(const Acc<C>& s, int o) {
    return {__shfl_xor_sync(0xffffffffu, s.a, o), __shfl_xor_sync(0xffffffffu, s.b, o)};
  }
  __device__ static void warp_combine(Acc<C>& s) {
    for (int o = 16; o > 0; o >>= 1) combine(s, shfl(s, o));
  }
};

// Reduced elements contiguous (inner == 1), short rows: one warp per row.
template <R op, class T>
__global__ void rows_warp(const T* x, T* y, int64_t rows, int64_t n) {
  using C = compute_t<T>;
  using F = Red<op, C>;
  const int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const T* p = x + row * n;
  Acc<C> s = F::init();
  for (int64_t j = lane; j < n; j += 32) F::add(s, ld(p, j));
  F::warp_combine(s);
  if (lane == 0) st(y, row, F::finalize(s, n));
}

// Long contiguous rows: one block (256 threads) per row.
template <R op, class T>
__global__ void rows_block(const T* x, T* y, int64_t rows, int64_t n) {
  using C = compute_t<T>;
  using F = Red<op, C>;
  __shared__ Acc<C> part[32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* p = x + row * n;
    Acc<C> s = F::init();
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) F::add(s, ld(p, j));
    F::warp_combine(s);
    if (lane == 0) part[w] = s;
    __syncthreads();
    if (w == 0) {
      s = lane < int(blockDim.x >> 5) ? part[lane] : F::init();
      F::warp_combine(s);
      if (lane == 0) st(y, row, F::finalize(s, n));
    }
    __syncthreads();
  }
}

// inner > 1: a 32 x R block covers 32 adjacent inner positions (coalesced) and splits the
// reduced axis over R rows of threads (8, or 32 when few blocks would cover a long axis, as in a
// channels-last global average pool: [N, H*W, C]), combined in shared memory.
template <R op, class T>
__global__ void cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  using C = compute_t<T>;
  using F = Red<op, C>;
  __shared__ Acc<C> part[32][33];
  const int64_t tiles = (inner + 31) / 32;
  const int64_t o = blockIdx.x / tiles, i = (blockIdx.x % tiles) * 32 + threadIdx.x;
  Acc<C> s = F::init();
  if (i < inner)
    for (int64_t r = threadIdx.y; r < n; r += blockDim.y) F::add(s, ld(x, (o * n + r) * inner + i));
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && i < inner) {
    for (int k = 1; k < int(blockDim.y); ++k) F::combine(s, part[k][threadIdx.x]);
    st(y, o * inner + i, F::finalize(s, n));
  }
}

// float16 with inner a multiple of 8 and 16-byte aligned buffers, as in a channels-last global
// average pool ([N, H*W, C], EfficientNet's squeeze-excitation ReduceMean): each thread reads 8
// adjacent inner positions as one 16-byte load, 4 rows in flight; cvb threads cover a row
// (inner/8 groups, at most 512 per block) and the block's 512/cvb rows of threads split the
// reduced axis, combined in shared memory. (`cols` reads 2 bytes per thread per row: EfficientNet-B0
// b128 spent 0.8 ms in 17 of these, about 4x its memory time.)
template <R op>
__global__ void __launch_bounds__(512) cols_h8(const __half* x, __half* y, int64_t n, int64_t inner, int cvb) {
  using F = Red<op, float>;
  __shared__ Acc<float> part[512 * 8];
  const int64_t cv = inner / 8, tiles = (cv + cvb - 1) / cvb;
  const int64_t o = blockIdx.x / tiles, g = (blockIdx.x % tiles) * cvb + threadIdx.x % cvb;
  const int rows = int(blockDim.x) / cvb, r0 = int(threadIdx.x) / cvb;
  Acc<float> s[8];
#pragma unroll
  for (int v = 0; v < 8; ++v) s[v] = F::init();
  if (r0 < rows && g < cv) {
    const __half* p = x + o * n * inner + g * 8;
    auto add = [&](const uint4& u) {
      const __half* h = reinterpret_cast<const __half*>(&u);
#pragma unroll
      for (int v = 0; v < 8; ++v) F::add(s[v], __half2float(h[v]));
    };
    int64_t r = r0;
    for (; r + 3 * rows < n; r += 4 * rows) {
      uint4 u[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) u[k] = *reinterpret_cast<const uint4*>(p + (r + k * rows) * inner);
#pragma unroll
      for (int k = 0; k < 4; ++k) add(u[k]);
    }
    for (; r < n; r += rows) add(*reinterpret_cast<const uint4*>(p + r * inner));
  }
#pragma unroll
  for (int v = 0; v < 8; ++v) part[threadIdx.x * 8 + v] = s[v];
  __syncthreads();
  if (r0 == 0 && g < cv) {
    for (int k = 1; k < rows; ++k)
#pragma unroll
      for (int v = 0; v < 8; ++v) F::combine(s[v], part[(k * cvb + threadIdx.x) * 8 + v]);
    uint4 out;
    __half* h = reinterpret_cast<__half*>(&out);
#pragma unroll
    for (int v = 0; v < 8; ++v) h[v] = __float2half(F::finalize(s[v], n));
    *reinterpret_cast<uint4*>(y + o * inner + g * 8) = out;
  }
}

// Any axes: one warp per output, offsets decoded from the merged strided layouts.
template <R op, class T>
__global__ void strided(const T* x, T* y, int64_t outputs, int64_t n, Strided kept, Strided red) {
  using C = compute_t<T>;
  using F = Red<op, C>;
  const int64_t o = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (o >= outputs) return;
  const int64_t base = kept.offset(o);
  Acc<C> s = F::init();
  for (int64_t j = lane; j < n; j += 32) F::add(s, ld(x, base + red.offset(j)));
  F::warp_combine(s);
  if (lane == 0) st(y, o, F::finalize(s, n));
}

// The reduced-axes mask (see ir/ops/reduce_params.h); the axes come from their host copy.
Expected<std::vector<bool>> reduce_mask(const LaunchContext& c, size_t rank, bool* noop) {
  const bool axes_input = c.node.opset >= reduce_axes_input_since(c.node) && c.has_input(1);
  if (axes_input && !c.host_inputs[1]) return c.fail("axes input has no host value at run time");
  return reduce_axes_mask(c.node, axes_input ? c.host_inputs[1] : nullptr, rank, noop);
}

template <R op, class T>
void launch(const LaunchContext& c, const AxisPlan& p) {
  const T* x = c.inputs[0].as<T>();
  T* y = c.outputs[0].as<T>();
  if (!p.simple) {
    const int64_t grid = (p.outputs * 32 + 255) / 256;
    strided<op, T><<<grid, 256, 0, c.stream>>>(x, y, p.outputs, p.reduce, p.kept, p.red);
  } else if (p.inner == 1 && p.reduce >= 2048 && p.outer < 4096) {
    rows_block<op, T><<<static_cast<unsigned>(std::min<int64_t>(p.outer, 65535)), 256, 0, c.stream>>>(x, y, p.outer, p.reduce);
  } else if (p.inner == 1) {
    const int64_t grid = (p.outer * 32 + 255) / 256;
    rows_warp<op, T><<<grid, 256, 0, c.stream>>>(x, y, p.outer, p.reduce);
  } else if (std::is_same_v<T, __half> && p.inner % 8 == 0 && aligned_to(x, 16) && aligned_to(y, 16)) {
    const int64_t cv = p.inner / 8;
    const int cvb = int(std::min<int64_t>(cv, 512));
    cols_h8<op><<<p.outer * ((cv + cvb - 1) / cvb), 512, 0, c.stream>>>(reinterpret_cast<const __half*>(x),
                                                                          reinterpret_cast<__half*>(y), p.reduce, p.inner, cvb);
  } else {
    const int64_t grid = p.outer * ((p.inner + 31) / 32);
    const unsigned rows = grid < 512 && p.reduce >= 256 ? 32 : 8;
    cols<op, T><<<grid, dim3(32, rows), 0, c.stream>>>(x, y, p.outer, p.reduce, p.inner);
  }
}

constexpr bool int_ok(R op) { return op != R::kL2 && op != R::kLogSum && op != R::kLogSumExp; }

template <R op>
Status reduce(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  if (x.dims.size() > kMaxRank) return c.fail("rank ", x.dims.size(), " is above the CUDA kernel's limit of 8");
  bool noop = false;
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(c, x.dims.size(), &noop));
  if (noop) {
    if (c.outputs[0].data != x.data && x.nbytes())
      KILN_CUDA_CHECK(cudaMemcpyAsync(c.outputs[0].data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, c.stream));
    return Status::ok();
  }
  const AxisPlan p = plan_axes(x.dims, mask);
  if (p.outputs != c.outputs[0].numel()) return c.fail("output size mismatch");
  if (p.outputs == 0) return Status::ok();
  switch (x.dtype) {
    case DataType::kFloat32: launch<op, float>(c, p); break;
    case DataType::kFloat16: launch<op, __half>(c, p); break;
    case DataType::kBFloat16: launch<op, __nv_bfloat16>(c, p); break;
    case DataType::kFloat64: launch<op, double>(c, p); break;
    case DataType::kInt32: if constexpr (int_ok(op)) { launch<op, int32_t>(c, p); break; } [[fallthrough]];
    case DataType::kInt64: if constexpr (int_ok(op)) { launch<op, int64_t>(c, p); break; } [[fallthrough]];
    default: return c.fail("no CUDA kernel for type ", dtype_name(x.dtype));
  }
  return Status::ok();
}

// Axes must be known on the host: an attribute, or a constant (initializer) axes input.
template <R op>
Support check(const Node& n) {
  if (n.inputs.empty() || !n.inputs[0]) return Support::no("no input");
  Support s = float_or_int_type(n.inputs[0]->dtype, int_ok(op), true);
  if (!s.ok) return s;
  s = rank_at_most_8(n.inputs[0]);
  if (!s.ok) return s;
  if (n.opset >= reduce_axes_input_since(n) && n.has_input(1) && n.inputs[1]->initializer == nullptr)
    return Support::no("axes input is not a constant");
  return Support::yes();
}

}  // namespace

void register_cuda_reduce_arg_kernels(CudaKernelTable& t);      // reduce_arg.cu
void register_cuda_reduce_softmax_kernels(CudaKernelTable& t);  // reduce_softmax.cu

void register_cuda_reduce_kernels(CudaKernelTable& t) {
  t.add({"", "ReduceSum", "cuda.reduce", reduce<R::kSum>, check<R::kSum>});
  t.add({"", "ReduceMean", "cuda.reduce", reduce<R::kMean>, check<R::kMean>});
  t.add({"", "ReduceMax", "cuda.reduce", reduce<R::kMax>, check<R::kMax>});
  t.add({"", "ReduceMin", "cuda.reduce", reduce<R::kMin>, check<R::kMin>});
  t.add({"", "ReduceProd", "cuda.reduce", reduce<R::kProd>, check<R::kProd>});
  t.add({"", "ReduceL1", "cuda.reduce", reduce<R::kL1>, check<R::kL1>});
  t.add({"", "ReduceL2", "cuda.reduce", reduce<R::kL2>, check<R::kL2>});
  t.add({"", "ReduceLogSum", "cuda.reduce", reduce<R::kLogSum>, check<R::kLogSum>});
  t.add({"", "ReduceLogSumExp", "cuda.reduce", reduce<R::kLogSumExp>, check<R::kLogSumExp>});
  t.add({"", "ReduceSumSquare", "cuda.reduce", reduce<R::kSumSquare>, check<R::kSumSquare>});
  register_cuda_reduce_arg_kernels(t);
  register_cuda_reduce_softmax_kernels(t);
}

}  // namespace kiln::cuda
