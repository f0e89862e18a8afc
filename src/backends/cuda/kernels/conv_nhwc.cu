// CUDA kernel of kiln.ConvAct {layout="NHWC"} (made by passes/convert_layout.cc): a 2-D
// convolution with X [N,H,W,C], W [M,kH,kW,C/g], Z and Y [N,oH,oW,M], float16 or float32.
// cuDNN's tensor-core convolutions are NHWC-native, so unlike NCHW (conv.cu) no layout transform
// runs around them. Bias + residual + Relu run inside cuDNN's fused
// cudnnConvolutionBiasActivationForward where it applies (Relu with any algorithm; no
// activation only with IMPLICIT_PRECOMP_GEMM, cuDNN's rule), else our own one-pass epilogue
// (which also applies Clip and Silu, the activations cuDNN's fused call does not take).
// Depthwise convolutions (group == C == M) with tap-major weights (weight_layout="HWCM") run our
// own kernels, which also apply the input activation (input_activation): cuDNN's NHWC depthwise
// kernels measured 10-30x slower than memory speed on H100 (MobileNetV2 / EfficientNet-B0, b128).
// 1x1 convolutions (stride 1, no padding, one group) run as one cuBLASLt GEMM (conv_gemm).
// The algorithm of the others: cuDNN's heuristic when the plan is made, then, at the first run that is not
// being captured into a CUDA graph, cudnnFindConvolutionForwardAlgorithmEx (timed, on the real
// buffers and the engine's workspace; three rounds, each algorithm's median) once per node and shape.
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/conv_nhwc.h"
#include "backends/cuda/kernels/gemm_epilogue.h"
#include "backends/cuda/kernels/nhwc_window.cuh"
#include "ir/ops/conv_window.h"

#pragma nv_diag_suppress 1444  // cuDNN 9 marks the legacy convolution API deprecated; 9.14 has it
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, int64_t i, float v) { p[i] = __float2half(v); }
__device__ __forceinline__ float ld(const float* p, int i) { return p[i]; }
__device__ __forceinline__ float ld(const __half* p, int i) { return __half2float(p[i]); }
__device__ __forceinline__ void st(float* p, int i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, int i, float v) { p[i] = __float2half(v); }

// The layer's activation (kiln.ConvAct's activation attribute), applied in float.
struct Act {
  enum Kind { kNone, kRelu, kClip, kSilu } kind = kNone;
  float lo = 0.f, hi = 0.f;  // kClip
  __device__ __forceinline__ float operator()(float v) const {
    switch (kind) {
      case kRelu: return fmaxf(v, 0.f);
      case kClip: return fminf(fmaxf(v, lo), hi);
      case kSilu: return __fdividef(v, 1.f + __expf(-v));  // 0 where __expf(-v) overflows
      default: return v;
    }
  }
  // Two float16 lanes at once (the depthwise tile kernel). SiLU as h*tanh(h) + h with h = v/2
  // (x * sigmoid(x) = h * (1 + tanh(h))): one tanh.approx.f16x2 for two lanes.
  __device__ __forceinline__ __half2 operator()(__half2 v) const {
    switch (kind) {
      case kRelu: return __hmax2(v, __float2half2_rn(0.f));
      case kClip: return __hmin2(__hmax2(v, __float2half2_rn(lo)), __float2half2_rn(hi));
      case kSilu: {
        const __half2 h = __hmul2(v, __float2half2_rn(0.5f));
        __half2 t;
        asm("tanh.approx.f16x2 %0, %1;" : "=r"(*reinterpret_cast<unsigned*>(&t)) : "r"(*reinterpret_cast<const unsigned*>(&h)));
        return __hfma2(h, t, h);
      }
      default: return v;
    }
  }
};

// y = act(y + bias[channel] + z) in one pass; channels are innermost, so channel = i % m.
template <class T>
__global__ void nhwc_epilogue(T* y, const T* bias, const T* z, Act act, int64_t m, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    float v = ld(y, i);
    if (bias) v += ld(bias, i % m);
    if (z) v += ld(z, i);
    st(y, i, act(v));
  }
}

// Depthwise (NHWC, group == C == M). Weights are tap-major ([kH, kW, 1, C], weight_layout
// "HWCM", laid out by convert_layout): one tap of V adjacent channels is one 16-byte load, and a
// warp's loads of a tap are contiguous (with [C, kH, kW, 1] they were V scalar loads kH*kW
// elements apart per tap: MobileNetV2 / EfficientNet-B0 b128 depthwise layers ran 4-25x slower
// than memory speed). in_act is the input activation (kiln.ConvAct's input_activation), applied
// to each in-bounds input element as it is loaded; the zero padding is not activated.
using DwGeom = NhwcWindow;

template <class T, int V>
__device__ __forceinline__ void load_act(const T* p, const Act& in_act, float (&out)[V]) {
  const Pack<T, V> pk = *reinterpret_cast<const Pack<T, V>*>(p);
#pragma unroll
  for (int v = 0; v < V; ++v) out[v] = in_act(ld(pk.v, v));
}

// Fast path: K x K window, stride S, dilation 1, 16-byte channel packs. One block computes a tile
// of th output rows x tg*P output columns x cp channel packs of one image. It first stages the
// tile's input window ((th-1)*S+K rows x (tg*P-1)*S+K columns x cp packs, zero padding included)
// in shared memory, with the input activation applied once per element (applied per tap as the
// loads went, a 5x5 window recomputed each SiLU about 10 times: EfficientNet-B0's b128 depthwise
// layers ran 7x slower than memory speed). Then each thread takes P adjacent output pixels of one
// pack: one shared-memory row segment of (P-1)*S+K pixels feeds all P outputs.
// The math runs on a pack as 4 lanes (Lane): float32 packs as 4 floats; float16 packs as 4 half2,
// so a window's products accumulate in float16, as float16 depthwise tactics commonly do (HFMA2:
// half the instructions of float math, no conversions; this kernel is instruction-bound, and it
// took the EfficientNet-B0 b128 layers 1.3-2x faster on H100, along with 3 blocks per SM).
struct DwTile {
  int th, tg, cp;  // output rows, groups of P output columns, channel packs per block
  int ih, iw;      // the staged input window
  int tiles_x;     // tiles across the output width
};

template <class T>
using Lane = std::conditional_t<std::is_same_v<T, __half>, __half2, float>;
__device__ __forceinline__ float lane_fma(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ __half2 lane_fma(__half2 a, __half2 b, __half2 c) { return __hfma2(a, b, c); }
__device__ __forceinline__ float lane_add(float a, float b) { return a + b; }
__device__ __forceinline__ __half2 lane_add(__half2 a, __half2 b) { return __hadd2(a, b); }
__device__ __forceinline__ void lane_zero(float& a) { a = 0.f; }
__device__ __forceinline__ void lane_zero(__half2& a) { a = __float2half2_rn(0.f); }

template <class T, int V, int K, int S, int P>
__global__ void __launch_bounds__(256, 3) dw_nhwc_tile(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                                                       const T* __restrict__ z, T* __restrict__ y, DwGeom g, DwTile t, Act in_act,
                                                       Act act) {
  using PackT = Pack<T, V>;
  using L = Lane<T>;
  constexpr int kL = int(sizeof(PackT) / sizeof(L));  // lanes per pack
  static_assert(kL * sizeof(L) == sizeof(PackT), "16-byte packs");
  auto lanes = [](PackT& p) { return reinterpret_cast<L*>(p.v); };
  extern __shared__ __align__(16) unsigned char smem_raw[];
  PackT* tile = reinterpret_cast<PackT*>(smem_raw);
  constexpr int kCols = (P - 1) * S + K;
  const int cv = g.c / V;
  const int pk0 = blockIdx.y * t.cp;
  const int packs = min(t.cp, cv - pk0);
  const int64_t n = blockIdx.z;
  const int oy0 = int(blockIdx.x / t.tiles_x) * t.th;
  const int ox0 = int(blockIdx.x % t.tiles_x) * t.tg * P;
  const int iy0 = oy0 * S - g.ph, ix0 = ox0 * S - g.pw;
  const T* xn = x + n * g.h * g.w * int64_t(g.c);
  for (int i = threadIdx.x; i < t.ih * t.iw * t.cp; i += blockDim.x) {
    const int pk = i % t.cp, pix = i / t.cp;
    const int iy = iy0 + pix / t.iw, ix = ix0 + pix % t.iw;
    PackT v;
    if (pk < packs && iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) {
      v = *reinterpret_cast<const PackT*>(xn + (int64_t(iy) * g.w + ix) * g.c + (pk0 + pk) * V);
      if (in_act.kind != Act::kNone) {
#pragma unroll
        for (int e = 0; e < kL; ++e) lanes(v)[e] = in_act(lanes(v)[e]);
      }
    } else {
#pragma unroll
      for (int e = 0; e < kL; ++e) lane_zero(lanes(v)[e]);
    }
    tile[i] = v;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < t.th * t.tg * t.cp; i += blockDim.x) {
    const int pk = i % t.cp, grp = (i / t.cp) % t.tg, row = i / (t.cp * t.tg);
    const int oy = oy0 + row, ox = ox0 + grp * P;
    if (pk >= packs || oy >= g.oh || ox >= g.ow) continue;
    const int c0 = (pk0 + pk) * V;
    L acc[P][kL];
    {
      PackT b;
      if (bias) b = *reinterpret_cast<const PackT*>(bias + c0);
      else
#pragma unroll
        for (int e = 0; e < kL; ++e) lane_zero(lanes(b)[e]);
#pragma unroll
      for (int p = 0; p < P; ++p)
#pragma unroll
        for (int e = 0; e < kL; ++e) acc[p][e] = lanes(b)[e];
    }
#pragma unroll
    for (int ky = 0; ky < K; ++ky) {
      const PackT* srow = tile + ((row * S + ky) * t.iw + grp * P * S) * t.cp + pk;
      PackT wk[K];
#pragma unroll
      for (int kx = 0; kx < K; ++kx) wk[kx] = *reinterpret_cast<const PackT*>(w + (ky * K + kx) * g.c + c0);
#pragma unroll
      for (int j = 0; j < kCols; ++j) {
        PackT xp = srow[j * t.cp];
#pragma unroll
        for (int p = 0; p < P; ++p) {
          const int kx = j - p * S;  // compile-time after unrolling
          if (kx >= 0 && kx < K) {
            PackT& wp = wk[kx < 0 ? 0 : kx >= K ? K - 1 : kx];
#pragma unroll
            for (int e = 0; e < kL; ++e) acc[p][e] = lane_fma(lanes(xp)[e], lanes(wp)[e], acc[p][e]);
          }
        }
      }
    }
#pragma unroll
    for (int p = 0; p < P; ++p) {
      if (ox + p < g.ow) {
        const int64_t o = ((n * g.oh + oy) * g.ow + ox + p) * int64_t(g.c) + c0;
        PackT out;
        if (z) {
          PackT zp = *reinterpret_cast<const PackT*>(z + o);
#pragma unroll
          for (int e = 0; e < kL; ++e) acc[p][e] = lane_add(acc[p][e], lanes(zp)[e]);
        }
#pragma unroll
        for (int e = 0; e < kL; ++e) lanes(out)[e] = act(acc[p][e]);
        *reinterpret_cast<PackT*>(y + o) = out;
      }
    }
  }
}

// Any window, stride and dilation: one output pixel and V channels per thread.
template <class T, int V>
__global__ void dw_nhwc(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                        const T* __restrict__ z, T* __restrict__ y, DwGeom g, Act in_act, Act act) {
  const int64_t total = int64_t(g.n) * g.oh * g.ow * (g.c / V);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const NhwcPixel px = nhwc_pixel<V>(i, g);
    const int64_t n = px.n;
    const int oy = px.oy, ox = px.ox, c0 = px.c0;
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = bias ? ld(bias, c0 + v) : 0.f;
    for (int ky = 0; ky < g.kh; ++ky) {
      const int iy = oy * g.sh - g.ph + ky * g.dh;
      if (iy < 0 || iy >= g.h) continue;
      for (int kx = 0; kx < g.kw; ++kx) {
        const int ix = ox * g.sw - g.pw + kx * g.dw;
        if (ix < 0 || ix >= g.w) continue;
        float xv[V], wv[V];
        load_act<T, V>(x + ((n * g.h + iy) * g.w + ix) * g.c + c0, in_act, xv);
        load_act<T, V>(w + (ky * g.kw + kx) * g.c + c0, Act{}, wv);
#pragma unroll
        for (int v = 0; v < V; ++v) acc[v] = fmaf(xv[v], wv[v], acc[v]);
      }
    }
    const int64_t o = i * V;
    if (z) {
      float zv[V];
      load_act<T, V>(z + o, Act{}, zv);
#pragma unroll
      for (int v = 0; v < V; ++v) acc[v] += zv[v];
    }
    Pack<T, V> out;
#pragma unroll
    for (int v = 0; v < V; ++v) st(out.v, v, act(acc[v]));
    *reinterpret_cast<Pack<T, V>*>(y + o) = out;
  }
}

// The tile: cp packs (the largest divisor of the pack count up to 8: 128 contiguous bytes per
// pixel), up to 16 groups of P columns, then rows until the block has 512 outputs (two per
// thread) or the staged window reaches max_smem; a small image whose every row fits doubles cp
// instead while under 256. The rows are then evened out over the tiles. (Chosen by timing 36
// such rules on EfficientNet-B0's seven b128 depthwise shapes, H100: this one summed 950 us
// against 1100 us for 8 groups, 256 outputs and 48 KiB; the best rule per shape would sum 893.)
template <int K, int S, int P>
DwTile dw_tile(const DwGeom& g, int cv, int max_smem) {
  constexpr int kPack = 16;
  DwTile t{};
  t.cp = 1;
  for (int d = 8; d >= 1; --d)
    if (cv % d == 0) { t.cp = d; break; }
  const int groups = (g.ow + P - 1) / P;
  t.tg = std::min(groups, 16);
  auto bytes = [&](int th, int cp) { return ((th - 1) * S + K) * ((t.tg * P - 1) * S + K) * cp * kPack; };
  while (t.tg > 1 && bytes(1, t.cp) > max_smem) t.tg /= 2;  // a wide window row (stride 2, 5x5: 84 KiB)
  t.th = 1;
  while (t.th < g.oh && t.th * t.tg * t.cp < 512 && bytes(t.th + 1, t.cp) <= max_smem) ++t.th;
  while (t.th * t.tg * t.cp < 256 && cv % (2 * t.cp) == 0 && bytes(t.th, 2 * t.cp) <= max_smem) t.cp *= 2;
  const int tiles_y = (g.oh + t.th - 1) / t.th;
  t.th = (g.oh + tiles_y - 1) / tiles_y;
  t.ih = (t.th - 1) * S + K;
  t.iw = (t.tg * P - 1) * S + K;
  t.tiles_x = (groups + t.tg - 1) / t.tg;
  return t;
}

template <class T, int V, int K, int S>
void launch_dw_tile(LaunchContext& ctx, const DwGeom& g, Act in_act, Act act) {
  constexpr int P = 4;
  // 72 KiB of dynamic shared memory (3 blocks per SM) needs the opt-in, once per kernel and
  // device (the caller holds conv_nhwc's lock); where it is refused, the default 48 KiB.
  static std::array<int, 64> opted{};  // per device: 0 not asked yet, else the limit
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= int(opted.size())) dev = -1;
  int max_smem = dev >= 0 ? opted[dev] : 0;
  if (max_smem == 0) {
    max_smem = cudaFuncSetAttribute(dw_nhwc_tile<T, V, K, S, P>, cudaFuncAttributeMaxDynamicSharedMemorySize, 72 * 1024) ==
                       cudaSuccess
                   ? 72 * 1024
                   : (cudaGetLastError(), 48 * 1024);
    if (dev >= 0) opted[dev] = max_smem;
  }
  const int cv = g.c / V;
  const DwTile t = dw_tile<K, S, P>(g, cv, max_smem);
  const T* b = ctx.has_input(2) ? ctx.inputs[2].as<const T>() : nullptr;
  const T* z = ctx.has_input(3) ? ctx.inputs[3].as<const T>() : nullptr;
  const dim3 grid(unsigned((g.oh + t.th - 1) / t.th * t.tiles_x), unsigned((cv + t.cp - 1) / t.cp), unsigned(g.n));
  const int threads = std::min(256, (t.th * t.tg * t.cp + 31) / 32 * 32);
  const size_t smem = size_t(t.ih) * t.iw * t.cp * sizeof(Pack<T, V>);
  dw_nhwc_tile<T, V, K, S, P><<<grid, threads, smem, ctx.stream>>>(ctx.inputs[0].as<const T>(), ctx.inputs[1].as<const T>(), b, z,
                                                                   ctx.outputs[0].as<T>(), g, t, in_act, act);
}

template <class T, int V>
void launch_dw(LaunchContext& ctx, const DwGeom& g, Act in_act, Act act) {
  if constexpr (V * sizeof(T) == 16) {  // the fast path takes 16-byte packs only
    // grid.z is the batch (at most 65535)
    const bool fast = g.c % V == 0 && g.kh == g.kw && g.dh == 1 && g.dw == 1 && g.sh == g.sw && g.n <= 65535;
    if (fast && g.kh == 3 && g.sh == 1) return launch_dw_tile<T, V, 3, 1>(ctx, g, in_act, act);
    if (fast && g.kh == 3 && g.sh == 2) return launch_dw_tile<T, V, 3, 2>(ctx, g, in_act, act);
    if (fast && g.kh == 5 && g.sh == 1) return launch_dw_tile<T, V, 5, 1>(ctx, g, in_act, act);
    if (fast && g.kh == 5 && g.sh == 2) return launch_dw_tile<T, V, 5, 2>(ctx, g, in_act, act);
  }
  const T* b = ctx.has_input(2) ? ctx.inputs[2].as<const T>() : nullptr;
  const T* z = ctx.has_input(3) ? ctx.inputs[3].as<const T>() : nullptr;
  const int64_t threads = int64_t(g.n) * g.oh * g.ow * (g.c / V);
  dw_nhwc<T, V><<<cuda_grid_for(threads, 256), 256, 0, ctx.stream>>>(ctx.inputs[0].as<const T>(), ctx.inputs[1].as<const T>(),
                                                                       b, z, ctx.outputs[0].as<T>(), g, in_act, act);
}

struct Plan {
  bool depthwise = false;
  bool gemm = false;  // 1x1, stride 1, no padding, one group: X [N*H*W, C] x W^T [C, M] on cuBLASLt
  DwGeom dw{};
  cudnnTensorDescriptor_t xd = nullptr, yd = nullptr, bd = nullptr;
  cudnnFilterDescriptor_t wd = nullptr;
  cudnnConvolutionDescriptor_t cd = nullptr;
  cudnnActivationDescriptor_t ad = nullptr;
  cudnnConvolutionFwdAlgo_t algo{};
  size_t ws = 0;
  int64_t m = 0;
  bool relu = false;  // act.kind == kRelu: the one activation cuDNN's fused call takes besides none
  Act act;
  Act in_act;  // input_activation (depthwise only)
  bool timed = false;     // the algorithm came from cudnnFind (else the heuristic)
  bool fused_ok = true;   // cleared if cuDNN refuses the fused call for this configuration
  ~Plan() {
    if (xd) cudnnDestroyTensorDescriptor(xd);
    if (yd) cudnnDestroyTensorDescriptor(yd);
    if (bd) cudnnDestroyTensorDescriptor(bd);
    if (wd) cudnnDestroyFilterDescriptor(wd);
    if (cd) cudnnDestroyConvolutionDescriptor(cd);
    if (ad) cudnnDestroyActivationDescriptor(ad);
  }
};

using Key = std::array<int64_t, 12>;
std::mutex g_mu;
std::map<Key, std::unique_ptr<Plan>>& cache() {
  static std::map<Key, std::unique_ptr<Plan>> c;
  return c;
}

size_t ws_limit(const LaunchContext& ctx) { return ctx.workspace ? ctx.workspace_bytes : 0; }

// The fused call's rule: no activation only with IMPLICIT_PRECOMP_GEMM.
bool fusable(const Plan& p, bool has_bias) {
  return has_bias && p.fused_ok &&
         (p.relu || (p.act.kind == Act::kNone && p.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM));
}

Status build(LaunchContext& ctx, Plan& p) {
  const DeviceTensor &x = ctx.inputs[0], &w = ctx.inputs[1], &y = ctx.outputs[0];
  const Node& n = ctx.node;
  if (x.dims.size() != 4 || w.dims.size() != 4 || y.dims.size() != 4) return ctx.fail("layout NHWC takes rank-4 X, W, Y");
  const bool hwcm = n.attr_string("weight_layout", "MHWC") == "HWCM";  // [kH,kW,C/g,M], else [M,kH,kW,C/g]
  const int64_t kh = hwcm ? w.dims[0] : w.dims[1], kw = hwcm ? w.dims[1] : w.dims[2];
  const int64_t w_m = hwcm ? w.dims[3] : w.dims[0], w_cg = hwcm ? w.dims[2] : w.dims[3];
  Expected<Window> win = resolve_window(n, {x.dims[1], x.dims[2]}, {kh, kw}, false);
  if (!win) return ctx.fail(win.status().message());
  if (win->pads[0] != win->pads[2] || win->pads[1] != win->pads[3] || win->out[0] != y.dims[1] || win->out[1] != y.dims[2])
    return ctx.fail("asymmetric pads or output dims that differ from the window's");
  const int64_t groups = n.attr_int("group", 1);
  const cudnnDataType_t t = y.dtype == DataType::kFloat16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  p.m = y.dims[3];
  const std::string act = n.attr_string("activation", "");
  p.act.kind = act == "Relu" ? Act::kRelu : act == "Clip" ? Act::kClip : act == "Silu" ? Act::kSilu : Act::kNone;
  p.act.lo = n.attr_float("act_min", -INFINITY);
  p.act.hi = n.attr_float("act_max", INFINITY);
  p.relu = p.act.kind == Act::kRelu;
  const std::string in_act = n.attr_string("input_activation", "");
  p.in_act.kind = in_act == "Clip" ? Act::kClip : in_act == "Silu" ? Act::kSilu : Act::kNone;
  p.in_act.lo = n.attr_float("in_act_min", -INFINITY);
  p.in_act.hi = n.attr_float("in_act_max", INFINITY);
  // The depthwise kernels index with 64-bit pixel offsets: no size limit. A depthwise layer
  // with [M,kH,kW,1] weights (not made by convert_layout) runs on cuDNN.
  if (hwcm && groups > 1 && groups == x.dims[3] && groups == p.m && w_cg == 1 && w_m == p.m) {
    p.depthwise = true;
    p.dw = {int(x.dims[0]), int(x.dims[1]), int(x.dims[2]), int(x.dims[3]), int(y.dims[1]), int(y.dims[2]),
            int(kh), int(kw), int(win->strides[0]), int(win->strides[1]), int(win->pads[0]),
            int(win->pads[1]), int(win->dilations[0]), int(win->dilations[1])};
    return Status::ok();
  }
  if (hwcm || p.in_act.kind != Act::kNone)
    return ctx.fail("weight_layout HWCM and input_activation are for depthwise convolutions only");
  if (groups == 1 && kh == 1 && kw == 1 && win->strides[0] == 1 && win->strides[1] == 1 && win->pads[0] == 0 &&
      win->pads[1] == 0 && w_cg == x.dims[3]) {
    p.gemm = true;
    return Status::ok();
  }
  KILN_CUDA_CHECK(cudnnCreateTensorDescriptor(&p.xd));
  KILN_CUDA_CHECK(cudnnCreateTensorDescriptor(&p.yd));
  KILN_CUDA_CHECK(cudnnCreateTensorDescriptor(&p.bd));
  KILN_CUDA_CHECK(cudnnCreateFilterDescriptor(&p.wd));
  KILN_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&p.cd));
  KILN_CUDA_CHECK(cudnnCreateActivationDescriptor(&p.ad));
  KILN_CUDA_CHECK(cudnnSetTensor4dDescriptor(p.xd, CUDNN_TENSOR_NHWC, t, int(x.dims[0]), int(x.dims[3]), int(x.dims[1]), int(x.dims[2])));
  KILN_CUDA_CHECK(cudnnSetTensor4dDescriptor(p.yd, CUDNN_TENSOR_NHWC, t, int(y.dims[0]), int(y.dims[3]), int(y.dims[1]), int(y.dims[2])));
  KILN_CUDA_CHECK(cudnnSetTensor4dDescriptor(p.bd, CUDNN_TENSOR_NCHW, t, 1, int(p.m), 1, 1));
  KILN_CUDA_CHECK(cudnnSetFilter4dDescriptor(p.wd, t, CUDNN_TENSOR_NHWC, int(w.dims[0]), int(w.dims[3]), int(w.dims[1]), int(w.dims[2])));
  KILN_CUDA_CHECK(cudnnSetConvolution2dDescriptor(p.cd, int(win->pads[0]), int(win->pads[1]), int(win->strides[0]),
                                                  int(win->strides[1]), int(win->dilations[0]), int(win->dilations[1]),
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  KILN_CUDA_CHECK(cudnnSetConvolutionGroupCount(p.cd, int(groups)));
  const bool no_tf32 = y.dtype == DataType::kFloat32 && !ctx.tf32;
  KILN_CUDA_CHECK(cudnnSetConvolutionMathType(p.cd, y.dtype == DataType::kFloat16 ? CUDNN_TENSOR_OP_MATH
                                                    : no_tf32                     ? CUDNN_FMA_MATH
                                                                                  : CUDNN_DEFAULT_MATH));
  KILN_CUDA_CHECK(cudnnSetActivationDescriptor(p.ad, p.relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                               CUDNN_NOT_PROPAGATE_NAN, 0.0));
  int got[4];
  KILN_CUDA_CHECK(cudnnGetConvolution2dForwardOutputDim(p.cd, p.xd, p.wd, &got[0], &got[1], &got[2], &got[3]));
  if (got[0] != y.dims[0] || got[1] != y.dims[3] || got[2] != y.dims[1] || got[3] != y.dims[2])
    return ctx.fail("cuDNN's output dims differ from the graph's");
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int found = 0;
  KILN_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, p.xd, p.wd, p.cd, p.yd,
                                                         CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf));
  for (int i = 0; i < found; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (no_tf32 && perf[i].mathType != CUDNN_FMA_MATH && perf[i].mathType != CUDNN_DEFAULT_MATH) continue;
    size_t ws = 0;  // the perf table's memory can be an estimate: ask for the exact size
    if (!no_tf32) KILN_CUDA_CHECK(cudnnSetConvolutionMathType(p.cd, perf[i].mathType));
    if (cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, p.xd, p.wd, p.cd, p.yd, perf[i].algo, &ws) !=
            CUDNN_STATUS_SUCCESS || ws > ws_limit(ctx))
      continue;
    p.algo = perf[i].algo;
    p.ws = ws;
    return Status::ok();
  }
  return ctx.fail("cuDNN has no NHWC algorithm for this convolution within the workspace");
}

// Times the algorithms on the real buffers once (writes y, which the run then overwrites).
// Without an activation, IMPLICIT_PRECOMP_GEMM (the one the fused call takes) wins unless
// another is more than 15% faster: the separate epilogue pass costs about that much.
void find(LaunchContext& ctx, Plan& p) {
  p.timed = true;
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(ctx.stream, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone) {
    p.timed = false;  // try again at a later, uncaptured run
    return;
  }
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int found = 0;
  const bool no_tf32 = ctx.outputs[0].dtype == DataType::kFloat32 && !ctx.tf32;
  // Timed twice, the second kept: with one timing per algorithm, ResNet-50 at batches 8 to 32 got
  // layers several times slower than at batch 64 (suspected: a cold GPU, clocks still ramping).
  for (int round = 0; round < 2; ++round)
    if (cudnnFindConvolutionForwardAlgorithmEx(ctx.cudnn, p.xd, ctx.inputs[0].data, p.wd, ctx.inputs[1].data, p.cd, p.yd,
                                               ctx.outputs[0].data, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf,
                                               ctx.workspace, ws_limit(ctx)) != CUDNN_STATUS_SUCCESS)
      return;  // keep the heuristic's choice
  const cudnnConvolutionFwdAlgoPerf_t* best = nullptr;
  const cudnnConvolutionFwdAlgoPerf_t* precomp = nullptr;
  for (int i = 0; i < found; ++i) {
    const auto& r = perf[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > ws_limit(ctx) || r.time < 0) continue;
    if (no_tf32 && r.mathType != CUDNN_FMA_MATH && r.mathType != CUDNN_DEFAULT_MATH) continue;
    if (!best) best = &r;
    if (!precomp && r.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) precomp = &r;
  }
  if (!best) return;
  if (p.act.kind == Act::kNone && precomp && precomp->time <= best->time * 1.15f) best = precomp;
  if (cudnnSetConvolutionMathType(p.cd, best->mathType) != CUDNN_STATUS_SUCCESS) return;
  size_t ws = 0;
  if (cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, p.xd, p.wd, p.cd, p.yd, best->algo, &ws) != CUDNN_STATUS_SUCCESS ||
      ws > ws_limit(ctx))
    return;
  p.algo = best->algo;
  p.ws = ws;
}

template <class T>
void epilogue(LaunchContext& ctx, const Plan& p, bool with_bias) {
  const T* bias = with_bias && ctx.has_input(2) ? ctx.inputs[2].as<const T>() : nullptr;
  const T* z = ctx.has_input(3) ? ctx.inputs[3].as<const T>() : nullptr;
  if (!bias && !z && p.act.kind == Act::kNone) return;
  const int64_t total = ctx.outputs[0].numel();
  nhwc_epilogue<T><<<cuda_grid_for(total, 256), 256, 0, ctx.stream>>>(ctx.outputs[0].as<T>(), bias, z, p.act, p.m, total);
}

// A 1x1 convolution (stride 1, no padding, one group) over channels-last data is one GEMM:
// Y [N*H*W, M] = X [N*H*W, C] x W [M, C]^T, with the bias (and Relu) in cuBLASLt's epilogue and the
// residual Z as its C operand (beta = 1; the epilogue comes after it). Clip and Silu run in our
// epilogue pass. The algorithm is cuBLASLt's heuristic: no timing at run time. (These layers on
// cuDNN, with cudnnFind choosing per process, ran 0.19 to 0.56 ms for one MobileNetV2 /
// EfficientNet-B0 b128 expand layer whose memory floor is 0.12 ms.)
Status conv_gemm(LaunchContext& ctx, const Plan& p) {
  const DeviceTensor &x = ctx.inputs[0], &y = ctx.outputs[0];
  GemmArgs g;
  g.dtype = y.dtype;
  g.k = x.dims[3];
  g.m = x.numel() / g.k;
  g.n = p.m;
  g.a = x.data; g.lda = g.k;
  g.b = ctx.inputs[1].data; g.ldb = g.k; g.trans_b = true;
  g.y = y.data; g.ldy = g.n;
  const bool bias = ctx.has_input(2), relu = p.act.kind == Act::kRelu;
  if (bias) g.bias = ctx.inputs[2].data;
  g.epilogue = bias ? (relu ? GemmEpilogue::kBiasRelu : GemmEpilogue::kBias) : relu ? GemmEpilogue::kRelu : GemmEpilogue::kNone;
  if (ctx.has_input(3)) {
    g.c = ctx.inputs[3].data;
    g.beta = 1.f;
  }
  g.key = &ctx.node;
  KILN_RETURN_IF_ERROR(run_gemm(ctx, g));
  if (p.act.kind == Act::kClip || p.act.kind == Act::kSilu) {
    const int64_t total = y.numel();
    if (y.dtype == DataType::kFloat16)
      nhwc_epilogue<__half><<<cuda_grid_for(total, 256), 256, 0, ctx.stream>>>(y.as<__half>(), nullptr, nullptr, p.act, p.m, total);
    else
      nhwc_epilogue<float><<<cuda_grid_for(total, 256), 256, 0, ctx.stream>>>(y.as<float>(), nullptr, nullptr, p.act, p.m, total);
  }
  return Status::ok();
}

}  // namespace

Status conv_nhwc(LaunchContext& ctx) {
  const DeviceTensor &x = ctx.inputs[0], &w = ctx.inputs[1], &y = ctx.outputs[0];
  if (y.numel() == 0) return Status::ok();
  Key key{};
  key[0] = reinterpret_cast<int64_t>(&ctx.node);
  key[1] = int64_t(y.dtype) * 2 + ctx.tf32;
  key[2] = int64_t(ws_limit(ctx));
  for (size_t i = 0; i < 4 && i < x.dims.size() && i < w.dims.size(); ++i) {
    key[3 + i] = x.dims[i];
    key[7 + i] = w.dims[i];
  }
  std::lock_guard<std::mutex> lock(g_mu);  // held through the launch: cached descriptors are shared
  auto& c = cache();
  auto it = c.find(key);
  if (it == c.end()) {
    if (c.size() > 4096) c.clear();
    auto p = std::make_unique<Plan>();
    KILN_RETURN_IF_ERROR(build(ctx, *p));
    it = c.emplace(key, std::move(p)).first;
  }
  Plan& p = *it->second;
  if (p.depthwise) {
    const int c = p.dw.c;
    if (y.dtype == DataType::kFloat16) {
      if (c % 8 == 0) launch_dw<__half, 8>(ctx, p.dw, p.in_act, p.act);
      else if (c % 2 == 0) launch_dw<__half, 2>(ctx, p.dw, p.in_act, p.act);
      else launch_dw<__half, 1>(ctx, p.dw, p.in_act, p.act);
    } else {
      if (c % 4 == 0) launch_dw<float, 4>(ctx, p.dw, p.in_act, p.act);
      else launch_dw<float, 1>(ctx, p.dw, p.in_act, p.act);
    }
    return Status::ok();
  }
  if (p.gemm) return conv_gemm(ctx, p);
  if (!p.timed) find(ctx, p);
  const float one = 1.f, zero = 0.f;
  const bool has_z = ctx.has_input(3), has_bias = ctx.has_input(2);
  if (fusable(p, has_bias)) {
    const float alpha2 = has_z ? 1.f : 0.f;
    const void* z = has_z ? ctx.inputs[3].data : y.data;
    const cudnnStatus_t s = cudnnConvolutionBiasActivationForward(ctx.cudnn, &one, p.xd, x.data, p.wd, w.data, p.cd, p.algo,
                                                                  ctx.workspace, p.ws, &alpha2, p.yd, z, p.bd,
                                                                  ctx.inputs[2].data, p.ad, p.yd, y.data);
    if (s == CUDNN_STATUS_SUCCESS) return Status::ok();
    p.fused_ok = false;  // this configuration is not fusable: convolution, then our epilogue
  }
  KILN_CUDA_CHECK(cudnnConvolutionForward(ctx.cudnn, &one, p.xd, x.data, p.wd, w.data, p.cd, p.algo, ctx.workspace, p.ws,
                                          &zero, p.yd, y.data));
  if (y.dtype == DataType::kFloat16) epilogue<__half>(ctx, p, true);
  else epilogue<float>(ctx, p, true);
  return Status::ok();
}

Support check_conv_nhwc(const Node& n) {
  if (n.outputs.empty() || !n.outputs[0]) return Support::no("no output");
  const DataType t = n.outputs[0]->dtype;
  if (t != DataType::kFloat32 && t != DataType::kFloat16) return Support::no(std::string("NHWC element type ") + dtype_name(t));
  const Shape& s = n.inputs[0]->shape;
  if (!s.rank_known() || s.rank() != 4) return Support::no("layout NHWC takes a rank-4 input");
  // HWCM weights and input activations run in the depthwise kernels only.
  const bool hwcm = n.attr_string("weight_layout", "MHWC") == "HWCM";
  if (!hwcm && !n.attr_string("input_activation", "").empty())
    return Support::no("input_activation without a tap-major (depthwise) weight");
  if (hwcm) {
    const Shape& w = n.inputs[1]->shape;
    const int64_t g = n.attr_int("group", 1);
    if (!w.is_static() || w.rank() != 4 || w.dims()[2].value() != 1 || w.dims()[3].value() != g || !s.dims()[3].is_static() ||
        s.dims()[3].value() != g)
      return Support::no("weight_layout HWCM on a convolution that is not depthwise");
  }
  return Support::yes();
}

}  // namespace kiln::cuda
