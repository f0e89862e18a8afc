// CUDA kernels of Softmax, LogSoftmax and Hardmax. The input is viewed as [outer, n, inner]:
// before opset 13 the op works on the input coerced to 2-D at `axis` (n = everything from
// `axis` on, inner = 1); from 13 on along the single dimension `axis` (as the CPU kernels).
// Rows (inner == 1) take one warp each when short, one block when long; a first pass keeps an
// online (max, sum of exp(x - max)) pair, so the row is read twice and written once.
// inner > 1 takes one thread per column (coalesced across the inner positions).
#include "backends/cuda/kernels/reduce_common.cuh"

namespace kiln::cuda {

namespace {

using namespace red;

enum class SM { kSoftmax, kLog, kHard };

// Online max+sum: merges (m2, s2) into (m, s).
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  const float nm = fmaxf(m, m2);
  if (nm == -INFINITY) return;
  s = (m == -INFINITY ? 0.f : s * __expf(m - nm)) + (m2 == -INFINITY ? 0.f : s2 * __expf(m2 - nm));
  m = nm;
}
__device__ __forceinline__ void add(float& m, float& s, float x) {
  if (x > m) { s = s * __expf(m - x) + 1.f; m = x; }
  else if (m != -INFINITY) s += __expf(x - m);
}
// Hardmax's first-maximum (value, index) merge.
__device__ __forceinline__ void best(float& v, int64_t& j, float v2, int64_t j2) {
  if (v2 > v || (v2 == v && j2 < j)) { v = v2; j = j2; }
}

template <SM op>
__device__ __forceinline__ float out(float x, float m, float s, int64_t j, int64_t jbest) {
  if constexpr (op == SM::kSoftmax) return __expf(x - m) / s;
  else if constexpr (op == SM::kLog) return x - m - __logf(s);
  else return j == jbest ? 1.f : 0.f;
}

// One warp per row (blockDim 256 = 8 rows per block).
template <SM op, class T>
__global__ void rows_warp(const T* x, T* y, int64_t rows, int64_t n) {
  const int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const T* p = x + row * n;
  T* q = y + row * n;
  float m = -INFINITY, s = 0.f;
  int64_t jb = INT64_MAX;
  for (int64_t j = lane; j < n; j += 32) {
    const float v = ld(p, j);
    if constexpr (op == SM::kHard) best(m, jb, v, j);
    else add(m, s, v);
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
    if constexpr (op == SM::kHard) best(m, jb, m2, __shfl_xor_sync(0xffffffffu, jb, o));
    else merge(m, s, m2, __shfl_xor_sync(0xffffffffu, s, o));
  }
  for (int64_t j = lane; j < n; j += 32) st(q, j, out<op>(ld(p, j), m, s, j, jb));
}

// One block per row for long rows.
template <SM op, class T>
__global__ void rows_block(const T* x, T* y, int64_t rows, int64_t n) {
  __shared__ float sm[32], ss[32];
  __shared__ int64_t sj[32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* p = x + row * n;
    T* q = y + row * n;
    float m = -INFINITY, s = 0.f;
    int64_t jb = INT64_MAX;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float v = ld(p, j);
      if constexpr (op == SM::kHard) best(m, jb, v, j);
      else add(m, s, v);
    }
    for (int pass = 0; pass < 2; ++pass) {  // warp, then across warps
      for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        if constexpr (op == SM::kHard) best(m, jb, m2, __shfl_xor_sync(0xffffffffu, jb, o));
        else merge(m, s, m2, __shfl_xor_sync(0xffffffffu, s, o));
      }
      if (pass == 1) break;
      if (lane == 0) { sm[w] = m; ss[w] = s; sj[w] = jb; }
      __syncthreads();
      m = lane < nw ? sm[lane] : -INFINITY;
      s = lane < nw ? ss[lane] : 0.f;
      jb = lane < nw ? sj[lane] : INT64_MAX;
    }
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) st(q, j, out<op>(ld(p, j), m, s, j, jb));
    __syncthreads();
  }
}

// inner > 1: one thread per (outer, inner) column.
template <SM op, class T>
__global__ void cols(const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  const int64_t total = outer * inner;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = k / inner, i = k - o * inner;
    const int64_t base = o * n * inner + i;
    float m = -INFINITY, s = 0.f;
    int64_t jb = INT64_MAX;
    for (int64_t j = 0; j < n; ++j) {
      const float v = ld(x, base + j * inner);
      if constexpr (op == SM::kHard) best(m, jb, v, j);
      else add(m, s, v);
    }
    for (int64_t j = 0; j < n; ++j) st(y, base + j * inner, out<op>(ld(x, base + j * inner), m, s, j, jb));
  }
}

template <SM op, class T>
void launch(const LaunchContext& c, int64_t outer, int64_t n, int64_t inner) {
  const T* x = c.inputs[0].as<T>();
  T* y = c.outputs[0].as<T>();
  if (inner > 1) {
    cols<op, T><<<cuda_grid_for(outer * inner, 256), 256, 0, c.stream>>>(x, y, outer, n, inner);
  } else if (n > 2048 && outer < 16384) {
    const int threads = n >= 8192 ? 1024 : 512;
    rows_block<op, T><<<static_cast<unsigned>(outer), threads, 0, c.stream>>>(x, y, outer, n);
  } else {
    rows_warp<op, T><<<(outer * 32 + 255) / 256, 256, 0, c.stream>>>(x, y, outer, n);
  }
}

template <SM op>
Status softmax(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  const bool legacy = c.node.opset < 13;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = c.node.attr_int("axis", legacy ? 1 : -1);
  if (!(legacy && axis == rank)) {
    if (axis < -rank || axis >= rank) return c.fail("axis ", axis, " is out of range for rank ", rank);
    if (axis < 0) axis += rank;
  }
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) (d < axis ? outer : (d == axis || legacy) ? n : inner) *= x.dims[d];
  if (outer * n * inner == 0) return Status::ok();
  switch (x.dtype) {
    case DataType::kFloat32: launch<op, float>(c, outer, n, inner); break;
    case DataType::kFloat16: launch<op, __half>(c, outer, n, inner); break;
    case DataType::kBFloat16: launch<op, __nv_bfloat16>(c, outer, n, inner); break;
    default: return c.fail("no CUDA kernel for type ", dtype_name(x.dtype));
  }
  return Status::ok();
}

Support check_softmax(const Node& n) {
  if (n.inputs.empty() || !n.inputs[0]) return Support::no("no input");
  return float_or_int_type(n.inputs[0]->dtype, false);
}

}  // namespace

void register_cuda_reduce_softmax_kernels(CudaKernelTable& t) {
  t.add({"", "Softmax", "cuda.reduce", softmax<SM::kSoftmax>, check_softmax});
  t.add({"", "LogSoftmax", "cuda.reduce", softmax<SM::kLog>, check_softmax});
  t.add({"", "Hardmax", "cuda.reduce", softmax<SM::kHard>, check_softmax});
}

}  // namespace kiln::cuda
