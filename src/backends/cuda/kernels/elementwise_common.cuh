// The one broadcasting machinery of the CUDA elementwise family, shared by every elementwise_*.cu:
//   launch_map<Out, In...>(ctx, f, y, {operands}): y[i] = f(in0[o0(i)], in1[o1(i)], ...) for any
//     fixed count of inputs of (possibly different) storage types; each operand is converted to
//     its compute type (float for float16/bfloat16, the type itself otherwise) before f, and f's
//     result converted to Out's storage.
//   launch_fold<T>(ctx, f, y, {operands}): y[i] = finish(fold(in_k[o_k(i)])) over a runtime count
//     of same-typed inputs (variadic Sum/Mean/Max/Min).
// Paths: when every input is either the output's size or a single element, a contiguous kernel
// moves 16 bytes per operand per access (when all pointers are aligned for that); otherwise the
// output index is decomposed over the broadcast dims, after the host has merged adjacent dims
// that every operand walks the same way (NCHW + C11 bias -> 3 dims; equal shapes -> 1 dim), with
// 32-bit index math whenever the output fits, because 64-bit division is several times slower.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/launch.h"

namespace kiln::cuda::ew {

constexpr int kThreads = 256;
constexpr int kMaxRank = 8;
constexpr int kMaxFold = 8;  // inputs one fold kernel reads; more are folded in chunks

// ---- storage and compute types ------------------------------------------------------------
template <class T> struct CalcOf { using type = T; };
template <> struct CalcOf<__half> { using type = float; };
template <> struct CalcOf<__nv_bfloat16> { using type = float; };
template <class T> using calc_t = typename CalcOf<T>::type;

template <class T> constexpr bool is_half_v = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;
template <class T> constexpr bool is_fp_v = std::is_floating_point_v<T> || is_half_v<T>;
template <class T> constexpr bool is_int_v = std::is_integral_v<T> && !std::is_same_v<T, bool>;

template <class T> __device__ __forceinline__ calc_t<T> to_calc(T v) { return v; }
template <> __device__ __forceinline__ float to_calc<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_calc<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

// A compute value to storage; the 16-bit floats round to nearest even from float.
template <class T, class C> __device__ __forceinline__ T from_calc(C v) {
  if constexpr (std::is_same_v<T, __half>) return __float2half_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(static_cast<float>(v));
  else return static_cast<T>(v);
}

// ---- dtype dispatch (host) ----------------------------------------------------------------
enum : uint32_t {
  kF32 = 1u << 0, kF16 = 1u << 1, kBF16 = 1u << 2, kF64 = 1u << 3,
  kI8 = 1u << 4, kI16 = 1u << 5, kI32 = 1u << 6, kI64 = 1u << 7,
  kU8 = 1u << 8, kU16 = 1u << 9, kU32 = 1u << 10, kU64 = 1u << 11, kBool = 1u << 12,
};
constexpr uint32_t kFloats = kF32 | kF16 | kBF16 | kF64;
constexpr uint32_t kSigned = kI8 | kI16 | kI32 | kI64;
constexpr uint32_t kUnsigned = kU8 | kU16 | kU32 | kU64;
constexpr uint32_t kInts = kSigned | kUnsigned;
constexpr uint32_t kNumeric = kFloats | kInts;
constexpr uint32_t kAll = kNumeric | kBool;

inline uint32_t type_bit(DataType t) {
  switch (t) {
    case DataType::kFloat32: return kF32;
    case DataType::kFloat16: return kF16;
    case DataType::kBFloat16: return kBF16;
    case DataType::kFloat64: return kF64;
    case DataType::kInt8: return kI8;
    case DataType::kInt16: return kI16;
    case DataType::kInt32: return kI32;
    case DataType::kInt64: return kI64;
    case DataType::kUInt8: return kU8;
    case DataType::kUInt16: return kU16;
    case DataType::kUInt32: return kU32;
    case DataType::kUInt64: return kU64;
    case DataType::kBool: return kBool;
    default: return 0;
  }
}

template <class T> struct Tag { using type = T; };

// Calls f(Tag<T>{}) for t's storage type when t is in Mask (only those are instantiated).
template <uint32_t Mask, class F>
bool visit(DataType t, F&& f) {
  switch (t) {
#define KILN_EW_CASE(dt, bit, T) \
  case DataType::dt:             \
    if constexpr ((Mask & bit) != 0) { f(Tag<T>{}); return true; } \
    break;
    KILN_EW_CASE(kFloat32, kF32, float)
    KILN_EW_CASE(kFloat16, kF16, __half)
    KILN_EW_CASE(kBFloat16, kBF16, __nv_bfloat16)
    KILN_EW_CASE(kFloat64, kF64, double)
    KILN_EW_CASE(kInt8, kI8, int8_t)
    KILN_EW_CASE(kInt16, kI16, int16_t)
    KILN_EW_CASE(kInt32, kI32, int32_t)
    KILN_EW_CASE(kInt64, kI64, int64_t)
    KILN_EW_CASE(kUInt8, kU8, uint8_t)
    KILN_EW_CASE(kUInt16, kU16, uint16_t)
    KILN_EW_CASE(kUInt32, kU32, uint32_t)
    KILN_EW_CASE(kUInt64, kU64, uint64_t)
    KILN_EW_CASE(kBool, kBool, bool)
#undef KILN_EW_CASE
    default: break;
  }
  return false;
}

// ---- build-time checks (host) -------------------------------------------------------------
// Input i (or output 0 when i < 0) has a type in mask; output rank, when known, is at most 8.
Support check_types(const Node& n, std::initializer_list<std::pair<int, uint32_t>> want);
// A functor built from the node's attributes when it has such a constructor.
template <class F> F make_functor(const Node& n) {
  if constexpr (std::is_constructible_v<F, const Node&>) return F(n);
  else return F{};
}

// ---- broadcast index ----------------------------------------------------------------------
template <int N> struct Bcast {
  int rank = 0;
  int64_t dims[kMaxRank] = {};
  int64_t strides[N][kMaxRank] = {};
};

// Fills b for operands of `in` dims broadcast to `out` (numpy rules, right-aligned), merging dims
// every operand walks alike and dropping size-1 dims. False when more than kMaxRank dims remain.
bool make_bcast(const std::vector<int64_t>& out, const std::vector<const std::vector<int64_t>*>& in,
                int* rank, int64_t* dims, int64_t (*strides)[kMaxRank]);

template <class Idx, int N>
__device__ __forceinline__ void bcast_offsets(Idx i, const Bcast<N>& b, int count, Idx* off) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
  for (int d = kMaxRank - 1; d >= 0; --d) {
    if (d >= b.rank) continue;
    Idx dim = static_cast<Idx>(b.dims[d]);
    Idx c = i % dim;
    i /= dim;
#pragma unroll
    for (int k = 0; k < N; ++k)
      if (k < count) off[k] += c * static_cast<Idx>(b.strides[k][d]);
  }
}

// ---- fixed-arity map ----------------------------------------------------------------------
template <int N> struct Ptrs { const void* p[N]; };

template <class T, int V> struct alignas(sizeof(T) * V) Pack { T v[V]; };

// V elements of every operand in registers: one slot per operand (operands' types differ).
template <size_t I, class T, int V> struct Slot { Pack<T, V> pk; };
template <int V, class Seq, class... In> struct Packs;
template <int V, size_t... I, class... In>
struct Packs<V, std::index_sequence<I...>, In...> : Slot<I, In, V>... {};

template <size_t I, class T, int V, class P>
__device__ __forceinline__ void load_slot(P& ps, const void* p, int64_t g, bool scalar) {
  Pack<T, V>& pk = static_cast<Slot<I, T, V>&>(ps).pk;
  if (scalar) {
    T s = *static_cast<const T*>(p);
#pragma unroll
    for (int j = 0; j < V; ++j) pk.v[j] = s;
  } else {
    pk = static_cast<const Pack<T, V>*>(p)[g];  // one 16-byte (or narrower) access
  }
}

template <int V, class... In, class P, size_t... I>
__device__ __forceinline__ void load_all(P& ps, const Ptrs<sizeof...(In)>& a, int64_t g, unsigned scalar_mask,
                                         std::index_sequence<I...>) {
  (load_slot<I, In, V>(ps, a.p[I], g, (scalar_mask >> I) & 1), ...);
}

template <class Out, class F, class Off, class... In, size_t... I>
__device__ __forceinline__ Out apply_at(const F& f, const Ptrs<sizeof...(In)>& a, const Off* off,
                                        std::index_sequence<I...>) {
  return from_calc<Out>(f(to_calc(static_cast<const In*>(a.p[I])[off[I]])...));
}

template <class Out, class F, int V, class... In, size_t... I>
__device__ __forceinline__ Out apply_pack(const F& f, const Packs<V, std::index_sequence<I...>, In...>& ps, int j,
                                          std::index_sequence<I...>) {
  return from_calc<Out>(f(to_calc(static_cast<const Slot<I, In, V>&>(ps).pk.v[j])...));
}

// Operands of the output's size or of one element (scalar_mask bit k); V elements per access.
template <int V, class Out, class F, class... In>
__global__ void __launch_bounds__(kThreads) k_map_contig(Out* __restrict__ y, int64_t n, F f,
                                                         Ptrs<sizeof...(In)> a, unsigned scalar_mask) {
  constexpr int N = sizeof...(In);
  using Seq = std::index_sequence_for<In...>;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t groups = n / V;
  for (int64_t g = tid; g < groups; g += stride) {
    Packs<V, Seq, In...> ps;
    load_all<V, In...>(ps, a, g, scalar_mask, Seq{});
    Pack<Out, V> out;
#pragma unroll
    for (int j = 0; j < V; ++j) out.v[j] = apply_pack<Out, F, V, In...>(f, ps, j, Seq{});
    reinterpret_cast<Pack<Out, V>*>(y)[g] = out;
  }
  for (int64_t i = groups * V + tid; i < n; i += stride) {  // the tail when V does not divide n
    int64_t off[N];
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = (scalar_mask >> k) & 1 ? 0 : i;
    y[i] = apply_at<Out, F, int64_t, In...>(f, a, off, Seq{});
  }
}

template <class Idx, class Out, class F, class... In>
__global__ void __launch_bounds__(kThreads) k_map_bcast(Out* __restrict__ y, Idx n, F f, Ptrs<sizeof...(In)> a,
                                                        Bcast<sizeof...(In)> b) {
  constexpr int N = sizeof...(In);
  const Idx stride = Idx(gridDim.x) * blockDim.x;
  for (Idx i = Idx(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    Idx off[N];
    bcast_offsets<Idx, N>(i, b, N, off);
    y[i] = apply_at<Out, F, Idx, In...>(f, a, off, std::index_sequence_for<In...>{});
  }
}

// Broadcasting with the innermost merged dim a multiple of V: V outputs per thread, each operand
// loaded as one V-wide access (stride 1 there) or one element (inner_bcast bit k: stride 0
// there, as the [N,1,1,C]... no: as a per-row scale). The offsets of a V-aligned output index
// are V-aligned for stride-1 operands, since every outer stride is a multiple of the inner dim.
// (EfficientNet's squeeze-excitation gate x[N,H,W,C] * s[N,1,1,C] channels-last: one 16-byte
// access per operand instead of V 2-byte ones.)
template <size_t I, class T, int V, class P, class Idx>
__device__ __forceinline__ void load_slot_at(P& ps, const void* p, Idx off, bool scalar) {
  Pack<T, V>& pk = static_cast<Slot<I, T, V>&>(ps).pk;
  const T* q = static_cast<const T*>(p) + off;
  if (scalar) {
    const T s = *q;
#pragma unroll
    for (int j = 0; j < V; ++j) pk.v[j] = s;
  } else {
    pk = *reinterpret_cast<const Pack<T, V>*>(q);
  }
}

template <int V, class Idx, class Out, class F, class... In, size_t... I>
__device__ __forceinline__ void bcast_vec_group(Out* __restrict__ y, Idx i, const F& f, const Ptrs<sizeof...(In)>& a,
                                                const Bcast<sizeof...(In)>& b, unsigned inner_bcast,
                                                std::index_sequence<I...> seq) {
  constexpr int N = sizeof...(In);
  Idx off[N];
  bcast_offsets<Idx, N>(i, b, N, off);
  Packs<V, std::index_sequence<I...>, In...> ps;
  (load_slot_at<I, In, V>(ps, a.p[I], off[I], (inner_bcast >> I) & 1), ...);
  Pack<Out, V> out;
#pragma unroll
  for (int j = 0; j < V; ++j) out.v[j] = apply_pack<Out, F, V, In...>(f, ps, j, seq);
  *reinterpret_cast<Pack<Out, V>*>(y + i) = out;
}

template <int V, class Idx, class Out, class F, class... In>
__global__ void __launch_bounds__(kThreads) k_map_bcast_vec(Out* __restrict__ y, Idx groups, F f, Ptrs<sizeof...(In)> a,
                                                            Bcast<sizeof...(In)> b, unsigned inner_bcast) {
  const Idx stride = Idx(gridDim.x) * blockDim.x;
  for (Idx g = Idx(blockIdx.x) * blockDim.x + threadIdx.x; g < groups; g += stride)
    bcast_vec_group<V, Idx, Out, F, In...>(y, g * V, f, a, b, inner_bcast, std::index_sequence_for<In...>{});
}

struct Operand {
  const void* data = nullptr;
  std::vector<int64_t> dims;
};
inline Operand operand(const DeviceTensor& t) { return {t.data, t.dims}; }
inline int64_t numel_of(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

template <class Out, class... In, class F>
Status launch_map(LaunchContext& c, const F& f, const DeviceTensor& y, const std::array<Operand, sizeof...(In)>& in) {
  constexpr int N = sizeof...(In);
  const int64_t n = y.numel();
  if (n == 0) return Status::ok();
  constexpr size_t widest = std::max({sizeof(Out), sizeof(In)...});
  constexpr int V = static_cast<int>(16 / widest);
  constexpr size_t sizes[N] = {sizeof(In)...};
  Ptrs<N> a{};
  bool contig = true;
  bool aligned = reinterpret_cast<uintptr_t>(y.data) % (sizeof(Out) * V) == 0;
  unsigned scalars = 0;
  for (int k = 0; k < N; ++k) {
    a.p[k] = in[k].data;
    const int64_t m = numel_of(in[k].dims);
    if (m == n) aligned = aligned && reinterpret_cast<uintptr_t>(in[k].data) % (sizes[k] * V) == 0;
    else if (m == 1) scalars |= 1u << k;
    else contig = false;
  }
  Out* py = static_cast<Out*>(y.data);
  if (contig && aligned) {
    k_map_contig<V, Out, F, In...><<<cuda_grid_for((n + V - 1) / V, kThreads), kThreads, 0, c.stream>>>(py, n, f, a, scalars);
    return Status::ok();
  }
  if constexpr (N == 1) {  // a unary map on unaligned memory: one element per access
    k_map_contig<1, Out, F, In...><<<cuda_grid_for(n, kThreads), kThreads, 0, c.stream>>>(py, n, f, a, scalars);
    return Status::ok();
  } else {
    Bcast<N> b;
    std::vector<const std::vector<int64_t>*> dims;
    for (int k = 0; k < N; ++k) dims.push_back(&in[k].dims);
    if (!make_bcast(y.dims, dims, &b.rank, b.dims, b.strides))
      return c.fail("broadcast over ", y.dims.size(), " dims is above the CUDA kernel's limit of ", kMaxRank);
    if (V > 1 && b.rank >= 1 && b.dims[b.rank - 1] % V == 0 && aligned_to(y.data, sizeof(Out) * V)) {
      unsigned inner_bcast = 0;
      bool ok = true;
      for (int k = 0; k < N; ++k) {
        const int64_t s = b.strides[k][b.rank - 1];
        if (s == 0) inner_bcast |= 1u << k;
        else ok = ok && s == 1 && aligned_to(in[k].data, sizes[k] * V);
      }
      if (ok) {
        const int64_t groups = n / V;
        const int64_t grid = cuda_grid_for(groups, kThreads);
        if (n < (int64_t(1) << 31))
          k_map_bcast_vec<V, uint32_t, Out, F, In...><<<grid, kThreads, 0, c.stream>>>(py, uint32_t(groups), f, a, b, inner_bcast);
        else
          k_map_bcast_vec<V, int64_t, Out, F, In...><<<grid, kThreads, 0, c.stream>>>(py, groups, f, a, b, inner_bcast);
        return Status::ok();
      }
    }
    const int64_t grid = cuda_grid_for(n, kThreads);
    if (n < (int64_t(1) << 31))
      k_map_bcast<uint32_t, Out, F, In...><<<grid, kThreads, 0, c.stream>>>(py, uint32_t(n), f, a, b);
    else
      k_map_bcast<int64_t, Out, F, In...><<<grid, kThreads, 0, c.stream>>>(py, n, f, a, b);
    return Status::ok();
  }
}

// ---- runtime-arity fold (same-typed inputs) -----------------------------------------------
// F: calc combine(calc acc, calc v); calc finish(calc acc, int total_inputs).
template <class Idx, class T, class F>
__global__ void __launch_bounds__(kThreads) k_fold(T* __restrict__ y, Idx n, F f, Ptrs<kMaxFold> a,
                                                   Bcast<kMaxFold> b, int count, int total, bool finish) {
  const Idx stride = Idx(gridDim.x) * blockDim.x;
  for (Idx i = Idx(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    Idx off[kMaxFold];
    bcast_offsets<Idx, kMaxFold>(i, b, count, off);
    calc_t<T> acc = to_calc(static_cast<const T*>(a.p[0])[off[0]]);
    for (int k = 1; k < count; ++k) acc = f.combine(acc, to_calc(static_cast<const T*>(a.p[k])[off[k]]));
    y[i] = from_calc<T>(finish ? f.finish(acc, total) : acc);
  }
}

// Folds any count of inputs, kMaxFold at a time; later chunks start from the partial result
// in y (rounded to T: only float16/bfloat16 sums of more than 8 inputs see that).
template <class T, class F>
Status launch_fold(LaunchContext& c, const F& f, const DeviceTensor& y, std::vector<Operand> in) {
  const int64_t n = y.numel();
  if (n == 0) return Status::ok();
  const int total = static_cast<int>(in.size());
  const int64_t grid = cuda_grid_for(n, kThreads);
  size_t next = 0;
  bool first = true;
  while (next < in.size()) {
    std::vector<Operand> chunk;
    if (!first) chunk.push_back({y.data, y.dims});
    while (chunk.size() < size_t(kMaxFold) && next < in.size()) chunk.push_back(in[next++]);
    Ptrs<kMaxFold> a{};
    Bcast<kMaxFold> b;
    std::vector<const std::vector<int64_t>*> dims;
    for (size_t k = 0; k < chunk.size(); ++k) {
      a.p[k] = chunk[k].data;
      dims.push_back(&chunk[k].dims);
    }
    if (!make_bcast(y.dims, dims, &b.rank, b.dims, b.strides))
      return c.fail("broadcast over ", y.dims.size(), " dims is above the CUDA kernel's limit of ", kMaxRank);
    const bool last = next == in.size();
    const int count = static_cast<int>(chunk.size());
    if (n < (int64_t(1) << 31))
      k_fold<uint32_t, T, F><<<grid, kThreads, 0, c.stream>>>(static_cast<T*>(y.data), uint32_t(n), f, a, b, count, total, last);
    else
      k_fold<int64_t, T, F><<<grid, kThreads, 0, c.stream>>>(static_cast<T*>(y.data), n, f, a, b, count, total, last);
    first = false;
  }
  return Status::ok();
}

// ---- shared host helpers ------------------------------------------------------------------
// Input 1's dims as the binary op broadcasts them: before opset 7, `axis` aligns B's dims with
// A's starting there (B padded with trailing 1s), as the CPU kernel does.
std::vector<int64_t> legacy_rhs_dims(const LaunchContext& c);

// Float and double overloads of the libm functions the unary and activation functors use, so a
// float never silently goes through the double version.
#define KILN_EW_MATH(name, f32, f64)                                 \
  __device__ __forceinline__ float name(float x) { return f32(x); } \
  __device__ __forceinline__ double name(double x) { return f64(x); }
KILN_EW_MATH(m_floor, floorf, ::floor)
KILN_EW_MATH(m_ceil, ceilf, ::ceil)
KILN_EW_MATH(m_rint, rintf, ::rint)  // round half to even (the default rounding mode)
KILN_EW_MATH(m_sqrt, sqrtf, ::sqrt)
KILN_EW_MATH(m_exp, expf, ::exp)
KILN_EW_MATH(m_expm1, expm1f, ::expm1)
KILN_EW_MATH(m_log, logf, ::log)
KILN_EW_MATH(m_log1p, log1pf, ::log1p)
KILN_EW_MATH(m_erf, erff, ::erf)
KILN_EW_MATH(m_fabs, fabsf, ::fabs)
KILN_EW_MATH(m_sin, sinf, ::sin)
KILN_EW_MATH(m_cos, cosf, ::cos)
KILN_EW_MATH(m_tan, tanf, ::tan)
KILN_EW_MATH(m_asin, asinf, ::asin)
KILN_EW_MATH(m_acos, acosf, ::acos)
KILN_EW_MATH(m_atan, atanf, ::atan)
KILN_EW_MATH(m_sinh, sinhf, ::sinh)
KILN_EW_MATH(m_cosh, coshf, ::cosh)
KILN_EW_MATH(m_tanh, tanhf, ::tanh)
KILN_EW_MATH(m_asinh, asinhf, ::asinh)
KILN_EW_MATH(m_acosh, acoshf, ::acosh)
KILN_EW_MATH(m_atanh, atanhf, ::atanh)
#undef KILN_EW_MATH

}  // namespace kiln::cuda::ew
