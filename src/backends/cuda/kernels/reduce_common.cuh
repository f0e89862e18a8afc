// Helpers shared by the reduce and normalization kernel families: element conversion to the
// compute type (float for the float types, 64-bit integers for the integer types), warp and
// block reductions, and the host-side axis analysis that turns a reduced-axes mask into either
// an [outer, reduce, inner] view or a general strided layout (at most 8 merged dimensions).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/launch.h"

namespace kiln::cuda::red {

constexpr int kMaxRank = 8;

// Compute type: float for float32/float16/bfloat16, double for double, long long for integers.
template <class T>
using compute_t = std::conditional_t<std::is_integral_v<T>, long long, std::conditional_t<std::is_same_v<T, double>, double, float>>;

template <class T>
__device__ __forceinline__ compute_t<T> ld(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(p[i]);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(p[i]);
  else return static_cast<compute_t<T>>(p[i]);
}
template <class T>
__device__ __forceinline__ void st(T* p, int64_t i, compute_t<T> v) {
  if constexpr (std::is_same_v<T, __half>) p[i] = __float2half(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) p[i] = __float2bfloat16(v);
  else p[i] = static_cast<T>(v);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `smem` holds 32 floats; the trailing sync lets the caller reuse it.
__device__ __forceinline__ float block_sum(float v, float* smem) {
  v = warp_sum(v);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if (lane == 0) smem[w] = v;
  __syncthreads();
  v = lane < nw ? smem[lane] : 0.f;
  v = warp_sum(v);
  __syncthreads();
  return v;
}
__device__ __forceinline__ float block_max(float v, float* smem) {
  v = warp_max(v);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if (lane == 0) smem[w] = v;
  __syncthreads();
  v = lane < nw ? smem[lane] : -INFINITY;
  v = warp_max(v);
  __syncthreads();
  return v;
}

// A strided enumeration of up to 8 dimensions: index k (row-major over dims) -> element offset.
struct Strided {
  int rank = 0;
  int64_t dims[kMaxRank] = {}, strides[kMaxRank] = {};
  __device__ __forceinline__ int64_t offset(int64_t k) const {
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t q = k / dims[d];
      off += (k - q * dims[d]) * strides[d];
      k = q;
    }
    return off;
  }
};

// The analysis of a reduction of `dims` over the axes in `mask`: size-1 axes dropped, runs of
// adjacent axes with the same role merged. `simple` when the result is [outer, reduce, inner].
struct AxisPlan {
  int64_t outputs = 1, reduce = 1;  // number of groups, elements per group
  bool simple = true;
  int64_t outer = 1, inner = 1;     // the simple view (reduce is the middle)
  Strided kept, red;                // the general view
};

inline AxisPlan plan_axes(const std::vector<int64_t>& dims, const std::vector<bool>& mask) {
  AxisPlan p;
  struct Seg { int64_t size, stride; bool red; };
  std::vector<Seg> segs;
  int64_t stride = 1;
  std::vector<int64_t> strides(dims.size());
  for (size_t k = dims.size(); k-- > 0;) { strides[k] = stride; stride *= dims[k]; }
  for (size_t k = 0; k < dims.size(); ++k) {
    (mask[k] ? p.reduce : p.outputs) *= dims[k];
    if (dims[k] == 1) continue;
    if (!segs.empty() && segs.back().red == mask[k]) {
      segs.back().size *= dims[k];
      segs.back().stride = strides[k];
    } else {
      segs.push_back({dims[k], strides[k], mask[k]});
    }
  }
  // [K] R [K] at most: the simple view.
  size_t r = 0, nred = 0;
  for (size_t s = 0; s < segs.size(); ++s) if (segs[s].red) { r = s; ++nred; }
  if (nred == 0) return p;  // nothing reduced: reduce = 1, inner = 1, outer = outputs
  if (nred == 1) {
    for (size_t s = 0; s < r; ++s) p.outer *= segs[s].size;
    for (size_t s = r + 1; s < segs.size(); ++s) p.inner *= segs[s].size;
    return p;
  }
  p.simple = false;
  for (const Seg& s : segs) {
    Strided& g = s.red ? p.red : p.kept;
    g.dims[g.rank] = s.size;
    g.strides[g.rank] = s.stride;
    ++g.rank;
  }
  return p;
}

inline Support float_or_int_type(DataType t, bool ints, bool f64 = false) {
  if (f64 && t == DataType::kFloat64) return Support::yes();
  if (t == DataType::kFloat32 || t == DataType::kFloat16 || t == DataType::kBFloat16) return Support::yes();
  if (ints && (t == DataType::kInt32 || t == DataType::kInt64)) return Support::yes();
  return Support::no(std::string("element type ") + dtype_name(t));
}

inline Support rank_at_most_8(const Value* v) {
  if (v && v->shape.rank_known() && v->shape.rank() > static_cast<size_t>(kMaxRank))
    return Support::no("rank above 8");
  return Support::yes();
}

}  // namespace kiln::cuda::red
