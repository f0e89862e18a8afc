// CUDA kernels of the pool family: MaxPool (no Indices output), AveragePool, GlobalAveragePool,
// GlobalMaxPool. Our own kernels rather than cuDNN pooling: cuDNN has only symmetric pads and
// no dilations, while one thread per output element over a window of <= 3 spatial dims covers
// every ONNX geometry (auto_pad, ceil_mode, asymmetric pads, dilations, count_include_pad) and
// is memory-bound anyway. Global pools reduce each (n, c) plane with one warp.
// kiln.MaxPool {layout="NHWC"} (passes/convert_layout.cc): 2-D windows over channels-last data,
// each thread V adjacent channels of one output pixel with 16-byte loads.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>

#include "backends/cuda/kernels/nhwc_window.cuh"
#include "backends/cuda/launch.h"
#include "ir/ops/conv_window.h"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float ld(const int8_t* p, int64_t i) { return float(p[i]); }
__device__ __forceinline__ float ld(const uint8_t* p, int64_t i) { return float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, int64_t i, float v) { p[i] = __float2half(v); }
__device__ __forceinline__ void st(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16(v); }
__device__ __forceinline__ void st(int8_t* p, int64_t i, float v) { p[i] = int8_t(v); }
__device__ __forceinline__ void st(uint8_t* p, int64_t i, float v) { p[i] = uint8_t(v); }

// Window geometry padded to 3 spatial dims (leading dims of extent 1).
struct PoolGeom {
  int64_t planes;
  int64_t in[3], out[3], k[3], s[3], pb[3], pe[3], d[3];
  float init;  // the max of an empty window (the CPU's lowest value of the type)
};

enum class PoolKind { kMax, kAvgExcludePad, kAvgIncludePad };

template <PoolKind kind, class T>
__global__ void window_pool(const T* x, T* y, PoolGeom g) {
  const int64_t osz = g.out[0] * g.out[1] * g.out[2], isz = g.in[0] * g.in[1] * g.in[2];
  const int64_t total = g.planes * osz;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i;
    int64_t o[3];
    o[2] = r % g.out[2]; r /= g.out[2];
    o[1] = r % g.out[1]; r /= g.out[1];
    o[0] = r % g.out[0]; r /= g.out[0];
    const T* xp = x + r * isz;
    int64_t start[3], padded = 1;
    for (int d = 0; d < 3; ++d) {
      start[d] = o[d] * g.s[d] - g.pb[d];
      if (kind == PoolKind::kAvgIncludePad) {  // taps inside input + explicit pads (not ceil overhang)
        int64_t n = 0;
        for (int64_t k = 0; k < g.k[d]; ++k) n += start[d] + k * g.d[d] < g.in[d] + g.pe[d];
        padded *= n;
      }
    }
    float acc = kind == PoolKind::kMax ? g.init : 0.f;
    int64_t count = 0;
    for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
      const int64_t i0 = start[0] + k0 * g.d[0];
      if (i0 < 0 || i0 >= g.in[0]) continue;
      for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
        const int64_t i1 = start[1] + k1 * g.d[1];
        if (i1 < 0 || i1 >= g.in[1]) continue;
        const int64_t row = (i0 * g.in[1] + i1) * g.in[2];
        for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
          const int64_t i2 = start[2] + k2 * g.d[2];
          if (i2 < 0 || i2 >= g.in[2]) continue;
          const float v = ld(xp, row + i2);
          if (kind == PoolKind::kMax) acc = count == 0 || v > acc ? v : acc;
          else acc += v;
          ++count;
        }
      }
    }
    if (kind == PoolKind::kAvgExcludePad) acc = count ? acc / float(count) : 0.f;
    if (kind == PoolKind::kAvgIncludePad) acc = padded ? acc / float(padded) : 0.f;
    st(y, i, acc);
  }
}

// One warp per (n, c) plane: mean or max of its `size` elements.
template <bool is_max, class T>
__global__ void global_pool(const T* x, T* y, int64_t planes, int64_t size) {
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= planes) return;
  const T* xp = x + warp * size;
  float acc = is_max ? -INFINITY : 0.f;
  for (int64_t i = lane; i < size; i += 32) {
    const float v = ld(xp, i);
    acc = is_max ? fmaxf(acc, v) : acc + v;
  }
  for (int off = 16; off > 0; off /= 2) {
    const float o = __shfl_down_sync(0xffffffffu, acc, off);
    acc = is_max ? fmaxf(acc, o) : acc + o;
  }
  if (lane == 0) st(y, warp, is_max ? acc : (size ? acc / float(size) : 0.f));
}


template <class T, int V>
__global__ void max_pool_nhwc_kernel(const T* __restrict__ x, T* __restrict__ y, NhwcWindow g, float init) {
  const int64_t total = int64_t(g.n) * g.oh * g.ow * (g.c / V);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const NhwcPixel px = nhwc_pixel<V>(i, g);
    const int64_t n = px.n;
    const int oy = px.oy, ox = px.ox, c0 = px.c0;
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = init;
    for (int ky = 0; ky < g.kh; ++ky) {
      const int iy = oy * g.sh - g.ph + ky * g.dh;
      if (iy < 0 || iy >= g.h) continue;
      for (int kx = 0; kx < g.kw; ++kx) {
        const int ix = ox * g.sw - g.pw + kx * g.dw;
        if (ix < 0 || ix >= g.w) continue;
        const Pack<T, V> xv = *reinterpret_cast<const Pack<T, V>*>(x + ((n * g.h + iy) * g.w + ix) * g.c + c0);
#pragma unroll
        for (int v = 0; v < V; ++v) acc[v] = fmaxf(acc[v], ld(xv.v, v));
      }
    }
    Pack<T, V> out;
#pragma unroll
    for (int v = 0; v < V; ++v) st(out.v, v, acc[v]);
    *reinterpret_cast<Pack<T, V>*>(y + i * V) = out;
  }
}

template <class T, int V>
void launch_max_pool_nhwc(LaunchContext& ctx, const NhwcWindow& g, float init) {
  const int64_t threads = int64_t(g.n) * g.oh * g.ow * (g.c / V);
  max_pool_nhwc_kernel<T, V><<<cuda_grid_for(threads, 256), 256, 0, ctx.stream>>>(ctx.inputs[0].as<const T>(),
                                                                                   ctx.outputs[0].as<T>(), g, init);
}

Status max_pool_nhwc(LaunchContext& ctx) {
  const DeviceTensor &x = ctx.inputs[0], &y = ctx.outputs[0];
  if (y.numel() == 0) return Status::ok();
  if (x.dims.size() != 4 || y.dims.size() != 4) return ctx.fail("layout NHWC takes rank-4 X and Y");
  if (x.numel() >= (int64_t(1) << 31)) return ctx.fail("input too large for 32-bit pixel indices");
  const Node& n = ctx.node;
  auto win = resolve_window(n, {x.dims[1], x.dims[2]}, n.attr_ints("kernel_shape"), n.attr_int("ceil_mode", 0) != 0);
  if (!win) return ctx.fail(win.status().message());
  const NhwcWindow g{int(x.dims[0]), int(x.dims[1]), int(x.dims[2]), int(x.dims[3]), int(y.dims[1]), int(y.dims[2]),
                     int(win->kernel[0]), int(win->kernel[1]), int(win->strides[0]), int(win->strides[1]),
                     int(win->pads[0]), int(win->pads[1]), int(win->dilations[0]), int(win->dilations[1])};
  if (x.dtype == DataType::kFloat16) {
    if (g.c % 8 == 0) launch_max_pool_nhwc<__half, 8>(ctx, g, -65504.f);
    else launch_max_pool_nhwc<__half, 1>(ctx, g, -65504.f);
  } else if (x.dtype == DataType::kFloat32) {
    if (g.c % 4 == 0) launch_max_pool_nhwc<float, 4>(ctx, g, -FLT_MAX);
    else launch_max_pool_nhwc<float, 1>(ctx, g, -FLT_MAX);
  } else {
    return ctx.fail("no CUDA NHWC MaxPool for type ", dtype_name(x.dtype));
  }
  return Status::ok();
}

template <PoolKind kind, class T>
void launch_window(LaunchContext& ctx, const PoolGeom& g) {
  window_pool<kind, T><<<cuda_grid_for(ctx.outputs[0].numel(), 256), 256, 0, ctx.stream>>>(
      ctx.inputs[0].as<const T>(), ctx.outputs[0].as<T>(), g);
}

template <PoolKind kind>
Status windowed(LaunchContext& ctx) {
  const DeviceTensor &x = ctx.inputs[0], &y = ctx.outputs[0];
  if (y.numel() == 0) return Status::ok();
  if (x.dims.size() < 3 || x.dims.size() > 5 || y.dims.size() != x.dims.size())
    return ctx.fail("input rank ", x.dims.size(), " is not 3..5");
  const Node& n = ctx.node;
  auto win = resolve_window(n, std::vector<int64_t>(x.dims.begin() + 2, x.dims.end()), n.attr_ints("kernel_shape"),
                            n.attr_int("ceil_mode", 0) != 0);
  if (!win) return ctx.fail(win.status().message());
  const size_t nd = win->nd, lead = 3 - nd;
  PoolGeom g{};
  g.planes = x.dims[0] * x.dims[1];
  for (size_t i = 0; i < 3; ++i) {
    const bool real = i >= lead;
    const size_t j = i - lead;
    g.in[i] = real ? win->in[j] : 1;
    g.out[i] = real ? y.dims[2 + j] : 1;  // the schema's concrete output dims (ceil_mode included)
    g.k[i] = real ? win->kernel[j] : 1;
    g.s[i] = real ? win->strides[j] : 1;
    g.pb[i] = real ? win->pads[j] : 0;
    g.pe[i] = real ? win->pads[j + nd] : 0;
    g.d[i] = real ? win->dilations[j] : 1;
  }
  switch (x.dtype) {
    case DataType::kFloat32: g.init = -FLT_MAX; launch_window<kind, float>(ctx, g); break;
    case DataType::kFloat16: g.init = -65504.f; launch_window<kind, __half>(ctx, g); break;
    case DataType::kBFloat16: g.init = -3.38953139e38f; launch_window<kind, __nv_bfloat16>(ctx, g); break;
    case DataType::kInt8:
      if constexpr (kind == PoolKind::kMax) { g.init = -128.f; launch_window<kind, int8_t>(ctx, g); break; }
      return ctx.fail("no CUDA pool for type int8");
    case DataType::kUInt8:
      if constexpr (kind == PoolKind::kMax) { g.init = 0.f; launch_window<kind, uint8_t>(ctx, g); break; }
      return ctx.fail("no CUDA pool for type uint8");
    default: return ctx.fail("no CUDA pool for type ", dtype_name(x.dtype));
  }
  return Status::ok();
}

Status average_pool(LaunchContext& ctx) {
  return ctx.node.attr_int("count_include_pad", 0) ? windowed<PoolKind::kAvgIncludePad>(ctx)
                                                   : windowed<PoolKind::kAvgExcludePad>(ctx);
}

template <bool is_max, class T>
void launch_global(LaunchContext& ctx, int64_t planes, int64_t size) {
  const int64_t threads = 256, grid = (planes * 32 + threads - 1) / threads;
  global_pool<is_max, T><<<grid, threads, 0, ctx.stream>>>(ctx.inputs[0].as<const T>(), ctx.outputs[0].as<T>(), planes,
                                                           size);
}

template <bool is_max>
Status global(LaunchContext& ctx) {
  const DeviceTensor& x = ctx.inputs[0];
  if (x.dims.size() < 2) return ctx.fail("input rank ", x.dims.size(), " is below 2");
  const int64_t planes = x.dims[0] * x.dims[1];
  if (planes == 0) return Status::ok();
  const int64_t size = x.numel() / planes;
  switch (x.dtype) {
    case DataType::kFloat32: launch_global<is_max, float>(ctx, planes, size); break;
    case DataType::kFloat16: launch_global<is_max, __half>(ctx, planes, size); break;
    case DataType::kBFloat16: launch_global<is_max, __nv_bfloat16>(ctx, planes, size); break;
    default: return ctx.fail("no CUDA pool for type ", dtype_name(x.dtype));
  }
  return Status::ok();
}

bool is_float(DataType t) { return t == DataType::kFloat32 || t == DataType::kFloat16 || t == DataType::kBFloat16; }

Support window_common(const Node& n) {
  if (n.inputs.empty() || !n.inputs[0]) return Support::no("no input");
  const Shape& s = n.inputs[0]->shape;
  if (!s.rank_known() || s.rank() < 3 || s.rank() > 5) return Support::no("input rank not in 3..5 (1-3 spatial dims)");
  if (!n.has_attr("kernel_shape")) return Support::no("no kernel_shape");
  return Support::yes();
}

Support check_max_pool(const Node& n) {
  if (n.has_output(1)) return Support::no("MaxPool with an Indices output");
  const DataType t = n.inputs[0]->dtype;
  if (!is_float(t) && t != DataType::kInt8 && t != DataType::kUInt8)
    return Support::no(std::string("element type ") + dtype_name(t));
  return window_common(n);
}

Support check_max_pool_nhwc(const Node& n) {
  const DataType t = n.inputs[0]->dtype;
  if (t != DataType::kFloat16 && t != DataType::kFloat32) return Support::no(std::string("NHWC element type ") + dtype_name(t));
  if (!n.inputs[0]->shape.rank_known() || n.inputs[0]->shape.rank() != 4) return Support::no("layout NHWC takes rank 4");
  return window_common(n);
}

Support check_average_pool(const Node& n) {
  if (!is_float(n.inputs[0]->dtype)) return Support::no(std::string("element type ") + dtype_name(n.inputs[0]->dtype));
  return window_common(n);
}

Support check_global(const Node& n) {
  if (!is_float(n.inputs[0]->dtype)) return Support::no(std::string("element type ") + dtype_name(n.inputs[0]->dtype));
  return Support::yes();
}

}  // namespace

void register_cuda_pool_kernels(CudaKernelTable& t) {
  t.add({"", "MaxPool", "cuda.pool", windowed<PoolKind::kMax>, check_max_pool});
  t.add({"kiln", "MaxPool", "cuda.pool", max_pool_nhwc, check_max_pool_nhwc});  // layout="NHWC"
  t.add({"", "AveragePool", "cuda.pool", average_pool, check_average_pool});
  t.add({"", "GlobalAveragePool", "cuda.pool", global<false>, check_global});
  t.add({"", "GlobalMaxPool", "cuda.pool", global<true>, check_global});
}

}  // namespace kiln::cuda
