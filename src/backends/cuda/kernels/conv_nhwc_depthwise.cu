// CUDA kernels of channels-last depthwise convolutions (kiln.ConvAct {layout="NHWC"} with
// group == C == M and weight_layout="HWCM", dispatched from conv_nhwc.cu): a shared-memory tile
// kernel for K x K windows (K 3 or 5, stride 1 or 2, dilation 1) and a direct kernel for the rest.
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <type_traits>

#include "backends/cuda/kernels/conv_nhwc_common.cuh"

namespace kiln::cuda::nhwc {

namespace {

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
  // device (contexts on several threads may ask at once: asking twice is harmless); where it is
  // refused, the default 48 KiB.
  static std::atomic<int> opted[64];  // per device: 0 not asked yet, else the limit
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) dev = -1;
  int max_smem = dev >= 0 ? opted[dev].load() : 0;
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
void launch_dw(LaunchContext& ctx, const DwGeom& g, Act in_act, Act act, bool allow_tile) {
  if constexpr (V * sizeof(T) == 16) {  // the fast path takes 16-byte packs only
    // grid.z is the batch (at most 65535)
    const bool fast = allow_tile && g.c % V == 0 && g.kh == g.kw && g.dh == 1 && g.dw == 1 && g.sh == g.sw && g.n <= 65535;
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

}  // namespace

void depthwise(LaunchContext& ctx, const NhwcWindow& g, const Act& in_act, const Act& act, bool allow_tile) {
  if (ctx.outputs[0].dtype == DataType::kFloat16) {
    if (g.c % 8 == 0) launch_dw<__half, 8>(ctx, g, in_act, act, allow_tile);
    else if (g.c % 2 == 0) launch_dw<__half, 2>(ctx, g, in_act, act, allow_tile);
    else launch_dw<__half, 1>(ctx, g, in_act, act, allow_tile);
  } else {
    if (g.c % 4 == 0) launch_dw<float, 4>(ctx, g, in_act, act, allow_tile);
    else launch_dw<float, 1>(ctx, g, in_act, act, allow_tile);
  }
}

std::string depthwise_rule(DataType t, const NhwcWindow& g) {
  // As depthwise() and launch_dw() choose: the tile kernel takes 16-byte channel packs only.
  const bool packs16 = t == DataType::kFloat16 ? g.c % 8 == 0 : g.c % 4 == 0;
  const bool fast = packs16 && g.kh == g.kw && g.dh == 1 && g.dw == 1 && g.sh == g.sw && g.n <= 65535 &&
                    (g.kh == 3 || g.kh == 5) && (g.sh == 1 || g.sh == 2);
  return fast ? "dw_tile.k" + std::to_string(g.kh) + "s" + std::to_string(g.sh) : std::string("dw_direct");
}

}  // namespace kiln::cuda::nhwc
