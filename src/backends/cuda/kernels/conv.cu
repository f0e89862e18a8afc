// CUDA kernels of the conv family: Conv and ConvTranspose (1-3 spatial dims, groups, dilations,
// strides, pads, auto_pad, bias).
// - cuDNN's legacy convolution API (cudnnConvolutionForward, and cudnnConvolutionBackwardData
//   for ConvTranspose, which is the data gradient of the matching Conv) takes float32/float16
//   whenever the pads are symmetric, which cuDNN requires; 1-D runs as 2-D with H = 1.
// - Otherwise (asymmetric or negative pads, output_padding >= stride, bfloat16) a direct
//   gather kernel computes each output element in float: slow but exact for every geometry.
// Tactics: cuda.conv.cudnn.<algo>.<math> / cuda.conv_transpose.cudnn.<algo>.<math> (cuDNN's
// heuristic picks the algorithm at build time, at the opt shapes; cudnn_algo.h names them) and
// cuda.conv.direct / cuda.conv_transpose.direct (the gather kernel). Descriptors are planned per
// context and shape (ConvState).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/conv_nhwc.h"
#include "backends/cuda/kernels/cudnn_algo.h"
#include "backends/cuda/launch.h"
#include "ir/activation.h"
#include "ir/ops/conv_window.h"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__half* p, int64_t i, float v) { p[i] = __float2half(v); }
__device__ __forceinline__ void st(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16(v); }

// Geometry padded to 3 spatial dims (leading dims of extent 1). For Conv, c is the input's
// channels and m the output's; for ConvTranspose likewise (x has c, y has m).
struct Geom {
  int64_t n, c, m, groups;
  int64_t in[3], out[3], k[3], s[3], p[3], d[3];
};

// Output element i of y [n, m, out0, out1, out2], as its coordinates (both direct kernels).
struct OutIndex {
  int64_t o[3], m, n;
};
__device__ __forceinline__ OutIndex out_index(int64_t i, const Geom& g) {
  OutIndex r;
  for (int d = 2; d >= 0; --d) {
    r.o[d] = i % g.out[d];
    i /= g.out[d];
  }
  r.m = i % g.m;
  r.n = i / g.m;
  return r;
}

// Conv: y[n, m, o] = sum over the group's channels and kernel taps of x[n, c, o*s - p + k*d] * w[m, c, k].
template <class T>
__global__ void conv_direct(const T* x, const T* w, const T* bias, T* y, Geom g) {
  const int64_t osz = g.out[0] * g.out[1] * g.out[2], total = g.n * g.m * osz;
  const int64_t cg = g.c / g.groups, mg = g.m / g.groups;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const OutIndex o = out_index(i, g);
    const int64_t o0 = o.o[0], o1 = o.o[1], o2 = o.o[2], m = o.m, n = o.n, grp = m / mg;
    float acc = bias ? ld(bias, m) : 0.f;
    for (int64_t c = 0; c < cg; ++c) {
      const int64_t xc = (n * g.c + grp * cg + c) * g.in[0];
      const int64_t wc = (m * cg + c) * g.k[0];
      for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
        const int64_t i0 = o0 * g.s[0] - g.p[0] + k0 * g.d[0];
        if (i0 < 0 || i0 >= g.in[0]) continue;
        for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
          const int64_t i1 = o1 * g.s[1] - g.p[1] + k1 * g.d[1];
          if (i1 < 0 || i1 >= g.in[1]) continue;
          for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
            const int64_t i2 = o2 * g.s[2] - g.p[2] + k2 * g.d[2];
            if (i2 < 0 || i2 >= g.in[2]) continue;
            acc += ld(x, ((xc + i0) * g.in[1] + i1) * g.in[2] + i2) * ld(w, ((wc + k0) * g.k[1] + k1) * g.k[2] + k2);
          }
        }
      }
    }
    st(y, i, acc);
  }
}

// ConvTranspose: y[n, m, o] = sum of x[n, c, i] * w[c, m % mg, k] over o = i*s - p + k*d.
template <class T>
__global__ void conv_transpose_direct(const T* x, const T* w, const T* bias, T* y, Geom g) {
  const int64_t osz = g.out[0] * g.out[1] * g.out[2], total = g.n * g.m * osz;
  const int64_t cg = g.c / g.groups, mg = g.m / g.groups;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const OutIndex o = out_index(i, g);
    const int64_t o0 = o.o[0], o1 = o.o[1], o2 = o.o[2], m = o.m, n = o.n, grp = m / mg, mm = m % mg;
    float acc = bias ? ld(bias, m) : 0.f;
    for (int64_t c = 0; c < cg; ++c) {
      const int64_t ci = grp * cg + c;
      const int64_t xc = (n * g.c + ci) * g.in[0];
      const int64_t wc = (ci * mg + mm) * g.k[0];
      for (int64_t k0 = 0; k0 < g.k[0]; ++k0) {
        const int64_t t0 = o0 + g.p[0] - k0 * g.d[0];
        if (t0 < 0 || t0 % g.s[0] || t0 / g.s[0] >= g.in[0]) continue;
        for (int64_t k1 = 0; k1 < g.k[1]; ++k1) {
          const int64_t t1 = o1 + g.p[1] - k1 * g.d[1];
          if (t1 < 0 || t1 % g.s[1] || t1 / g.s[1] >= g.in[1]) continue;
          for (int64_t k2 = 0; k2 < g.k[2]; ++k2) {
            const int64_t t2 = o2 + g.p[2] - k2 * g.d[2];
            if (t2 < 0 || t2 % g.s[2] || t2 / g.s[2] >= g.in[2]) continue;
            acc += ld(x, ((xc + t0 / g.s[0]) * g.in[1] + t1 / g.s[1]) * g.in[2] + t2 / g.s[2]) *
                   ld(w, ((wc + k0) * g.k[1] + k1) * g.k[2] + k2);
          }
        }
      }
    }
    st(y, i, acc);
  }
}

// y[n, m, :] += bias[m] after cuDNN (one pass, coalesced along the spatial axis).
// The epilogue of a convolution in one pass over y: y = act(y + bias[channel] + z), each part
// optional (kiln.ConvAct folds the residual Add and the Relu in here; plain Conv adds its bias).
template <class T>
__global__ void conv_epilogue(T* y, const T* bias, const T* z, bool relu, int64_t m, int64_t spatial, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    float v = ld(y, i);
    if (bias) v += ld(bias, (i / spatial) % m);
    if (z) v += ld(z, i);
    st(y, i, relu ? fmaxf(v, 0.f) : v);
  }
}

// Conv with asymmetric pads: x copied into the workspace with the pads' difference made explicit,
// so cuDNN sees symmetric pads (TF-style SAME convolutions stay on cuDNN).
struct PadGeom {
  int64_t planes;
  int64_t in[3], out[3], before[3];
};

template <class T>
__global__ void pad_input(const T* x, T* y, PadGeom g) {
  const int64_t total = g.planes * g.out[0] * g.out[1] * g.out[2];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i;
    const int64_t o2 = r % g.out[2]; r /= g.out[2];
    const int64_t o1 = r % g.out[1]; r /= g.out[1];
    const int64_t o0 = r % g.out[0]; r /= g.out[0];
    const int64_t i0 = o0 - g.before[0], i1 = o1 - g.before[1], i2 = o2 - g.before[2];
    const bool in = i0 >= 0 && i0 < g.in[0] && i1 >= 0 && i1 < g.in[1] && i2 >= 0 && i2 < g.in[2];
    y[i] = in ? x[((r * g.in[0] + i0) * g.in[1] + i1) * g.in[2] + i2] : T(0.f);
  }
}

struct ConvPlan {
  bool cudnn = false;
  Geom g{};
  PadGeom pad{};
  size_t pad_bytes = 0;  // > 0: x goes through pad_input into the workspace's head
  cudnnTensorDescriptor_t xd = nullptr, yd = nullptr;
  cudnnFilterDescriptor_t wd = nullptr;
  cudnnConvolutionDescriptor_t cd = nullptr;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd{};
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t ws = 0;
  ~ConvPlan() {
    if (xd) cudnnDestroyTensorDescriptor(xd);
    if (yd) cudnnDestroyTensorDescriptor(yd);
    if (wd) cudnnDestroyFilterDescriptor(wd);
    if (cd) cudnnDestroyConvolutionDescriptor(cd);
  }
};

using ConvKey = std::array<int64_t, 19>;
// One layer's plans in one context, by shape.
struct ConvState : LayerState {
  std::map<ConvKey, std::unique_ptr<const ConvPlan>> plans;
};

// The algorithm a tactic id records: none (the heuristic picks: build time), the direct kernel,
// or a cuDNN algorithm and math type.
struct Recorded {
  bool direct = false, cudnn = false;
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

cudnnDataType_t cudnn_type(DataType t) { return t == DataType::kFloat16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT; }

// cuDNN descriptors for the plan's geometry; false (no error) when cuDNN cannot take it.
Expected<bool> make_cudnn(LaunchContext& ctx, bool transpose, const Window& win, const Recorded& rec, ConvPlan& p) {
  const DataType dt = ctx.outputs[0].dtype;
  if (dt != DataType::kFloat32 && dt != DataType::kFloat16) return false;
  const size_t nd = win.nd;
  for (size_t i = 0; i < nd; ++i)
    if (win.pads[i] < 0 || win.pads[i + nd] < 0 || (transpose && win.pads[i] != win.pads[i + nd])) return false;
  // 1-D runs as 2-D with H = 1.
  const int sd = nd == 1 ? 2 : int(nd), lead = nd == 1 ? 1 : 0;
  std::vector<int> xdims(sd + 2), ydims(sd + 2), wdims(sd + 2), pads(sd, 0), strides(sd, 1), dils(sd, 1);
  const DeviceTensor &x = ctx.inputs[0], &w = ctx.inputs[1], &y = ctx.outputs[0];
  xdims[0] = int(x.dims[0]); xdims[1] = int(x.dims[1]);
  ydims[0] = int(y.dims[0]); ydims[1] = int(y.dims[1]);
  wdims[0] = int(w.dims[0]); wdims[1] = int(w.dims[1]);
  if (lead) xdims[2] = ydims[2] = wdims[2] = 1;
  for (size_t i = 0; i < nd; ++i) {
    const int64_t sym = std::min(win.pads[i], win.pads[i + nd]);
    const int64_t extra = win.pads[i] + win.pads[i + nd] - 2 * sym;  // 0 unless asymmetric
    xdims[2 + lead + i] = int(x.dims[2 + i] + extra);
    ydims[2 + lead + i] = int(y.dims[2 + i]);
    wdims[2 + lead + i] = int(w.dims[2 + i]);
    pads[lead + i] = int(sym);
    if (extra) p.pad_bytes = 1;
    strides[lead + i] = int(win.strides[i]);
    dils[lead + i] = int(win.dilations[i]);
  }
  const cudnnDataType_t t = cudnn_type(dt);
  KILN_CUDA_CHECK(cudnnCreateTensorDescriptor(&p.xd));
  KILN_CUDA_CHECK(cudnnCreateTensorDescriptor(&p.yd));
  KILN_CUDA_CHECK(cudnnCreateFilterDescriptor(&p.wd));
  KILN_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&p.cd));
  auto set_tensor = [&](cudnnTensorDescriptor_t d, const std::vector<int>& dims) {
    std::vector<int> str(dims.size());
    int s = 1;
    for (size_t i = dims.size(); i-- > 0;) { str[i] = s; s *= dims[i]; }
    return cudnnSetTensorNdDescriptor(d, t, int(dims.size()), dims.data(), str.data());
  };
  KILN_CUDA_CHECK(set_tensor(p.xd, xdims));
  KILN_CUDA_CHECK(set_tensor(p.yd, ydims));
  KILN_CUDA_CHECK(cudnnSetFilterNdDescriptor(p.wd, t, CUDNN_TENSOR_NCHW, sd + 2, wdims.data()));
  KILN_CUDA_CHECK(cudnnSetConvolutionNdDescriptor(p.cd, sd, pads.data(), strides.data(), dils.data(),
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  KILN_CUDA_CHECK(cudnnSetConvolutionGroupCount(p.cd, int(p.g.groups)));
  const bool no_tf32 = dt == DataType::kFloat32 && !ctx.tf32;
  const cudnnMathType_t math = dt == DataType::kFloat16 ? CUDNN_TENSOR_OP_MATH : no_tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  KILN_CUDA_CHECK(cudnnSetConvolutionMathType(p.cd, math));
  p.math = math;
  // The forward conv's output (ConvTranspose: of the matching Conv, from y) must match exactly.
  std::vector<int> got(sd + 2);
  KILN_CUDA_CHECK(cudnnGetConvolutionNdForwardOutputDim(p.cd, transpose ? p.yd : p.xd, p.wd, sd + 2, got.data()));
  if (got != (transpose ? xdims : ydims)) return false;
  size_t limit = ctx.workspace ? ctx.workspace_bytes : 0;
  if (p.pad_bytes) {
    PadGeom& pg = p.pad;
    pg.planes = x.dims[0] * x.dims[1];
    int64_t n = pg.planes;
    for (size_t i = 0; i < 3; ++i) {
      const bool real = i + nd >= 3;
      const size_t j = i + nd - 3;
      pg.in[i] = real ? x.dims[2 + j] : 1;
      pg.out[i] = real ? xdims[2 + lead + j] : 1;
      pg.before[i] = real ? win.pads[j] - std::min(win.pads[j], win.pads[j + nd]) : 0;
      n *= pg.out[i];
    }
    p.pad_bytes = (size_t(n) * dtype_size(dt) + 255) / 256 * 256;
    if (p.pad_bytes > limit) return false;
    limit -= p.pad_bytes;
  }
  auto usable = [&](cudnnStatus_t s, size_t mem, cudnnMathType_t mt) {
    if (s != CUDNN_STATUS_SUCCESS || mem > limit) return false;
    return !(no_tf32 && mt != CUDNN_FMA_MATH && mt != CUDNN_DEFAULT_MATH);
  };
  if (rec.cudnn) {  // the build's choice, if it runs at these shapes
    size_t ws = 0;
    cudnnStatus_t st = cudnnSetConvolutionMathType(p.cd, rec.math);
    if (st == CUDNN_STATUS_SUCCESS)
      st = transpose ? cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.cudnn, p.wd, p.xd, p.cd, p.yd,
                                                                    cudnnConvolutionBwdDataAlgo_t(rec.algo), &ws)
                     : cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, p.xd, p.wd, p.cd, p.yd,
                                                               cudnnConvolutionFwdAlgo_t(rec.algo), &ws);
    if (st == CUDNN_STATUS_SUCCESS && ws <= limit) {
      p.fwd = cudnnConvolutionFwdAlgo_t(rec.algo);
      p.bwd = cudnnConvolutionBwdDataAlgo_t(rec.algo);
      p.math = rec.math;
      p.ws = ws;
      return true;
    }
    log_recorded_unusable(ctx, st != CUDNN_STATUS_SUCCESS ? cudnnGetErrorString(st) : "workspace above the limit",
                          "cuDNN's heuristic picks for these shapes");
    KILN_CUDA_CHECK(cudnnSetConvolutionMathType(p.cd, math));
  }
  int found = 0;
  // Tuning: every algorithm the heuristic lists that fits the workspace (and the TF32 setting) is
  // a candidate, in the heuristic's order, at most ctx.max_candidates of them.
  auto list = [&](const std::string& algo_math) {
    if (!ctx.candidates || int(ctx.candidates->size()) >= ctx.max_candidates) return;
    std::string id = std::string(transpose ? "cuda.conv_transpose" : "cuda.conv") + ".cudnn." + algo_math;
    if (std::find(ctx.candidates->begin(), ctx.candidates->end(), id) == ctx.candidates->end()) ctx.candidates->push_back(id);
  };
  if (!transpose) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    KILN_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, p.xd, p.wd, p.cd, p.yd,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf));
    bool chosen = false;
    for (int i = 0; i < found; ++i) {
      if (!usable(perf[i].status, perf[i].memory, perf[i].mathType)) continue;
      size_t ws = 0;  // the perf table's memory can be an estimate: ask for the exact size
      if (!no_tf32) KILN_CUDA_CHECK(cudnnSetConvolutionMathType(p.cd, perf[i].mathType));
      if (cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, p.xd, p.wd, p.cd, p.yd, perf[i].algo, &ws) !=
              CUDNN_STATUS_SUCCESS || ws > limit)
        continue;
      list(cudnn_algo_name(kFwdAlgos, perf[i].algo, no_tf32 ? math : perf[i].mathType));
      if (chosen) continue;
      chosen = true;
      p.fwd = perf[i].algo;
      if (!no_tf32) p.math = perf[i].mathType;
      p.ws = ws;
      if (!ctx.candidates) break;
    }
    if (chosen) KILN_CUDA_CHECK(cudnnSetConvolutionMathType(p.cd, p.math));
    return chosen;
  } else {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    KILN_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.cudnn, p.wd, p.xd, p.cd, p.yd,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &found, perf));
    bool chosen = false;
    for (int i = 0; i < found; ++i) {
      if (!usable(perf[i].status, perf[i].memory, perf[i].mathType)) continue;
      size_t ws = 0;
      if (!no_tf32) KILN_CUDA_CHECK(cudnnSetConvolutionMathType(p.cd, perf[i].mathType));
      if (cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.cudnn, p.wd, p.xd, p.cd, p.yd, perf[i].algo, &ws) !=
              CUDNN_STATUS_SUCCESS || ws > limit)
        continue;
      list(cudnn_algo_name(kBwdDataAlgos, perf[i].algo, no_tf32 ? math : perf[i].mathType));
      if (chosen) continue;
      chosen = true;
      p.bwd = perf[i].algo;
      if (!no_tf32) p.math = perf[i].mathType;
      p.ws = ws;
      if (!ctx.candidates) break;
    }
    if (chosen) KILN_CUDA_CHECK(cudnnSetConvolutionMathType(p.cd, p.math));
    return chosen;
  }
  return false;
}

Status build_plan(LaunchContext& ctx, bool transpose, const Recorded& rec, ConvPlan& p) {
  const DeviceTensor &x = ctx.inputs[0], &w = ctx.inputs[1], &y = ctx.outputs[0];
  const Node& n = ctx.node;
  if (x.dims.size() < 3 || x.dims.size() > 5 || w.dims.size() != x.dims.size() || y.dims.size() != x.dims.size())
    return ctx.fail("input, weights and output ranks do not fit a 1-3-D convolution");
  const std::vector<int64_t> in(x.dims.begin() + 2, x.dims.end());
  const std::vector<int64_t> kernel = conv_kernel_shape(n, w.dims);
  Expected<Window> win = transpose ? resolve_transpose_window(n, in, kernel) : resolve_window(n, in, kernel, false);
  if (!win) return ctx.fail(win.status().message());
  const size_t nd = win->nd;
  for (size_t i = 0; i < nd; ++i)
    if (win->out[i] != y.dims[2 + i]) return ctx.fail("output dims differ from the window's");
  Geom& g = p.g;
  g.n = x.dims[0];
  g.c = x.dims[1];
  g.m = y.dims[1];
  g.groups = n.attr_int("group", 1);
  if (g.groups < 1 || g.c % g.groups || g.m % g.groups) return ctx.fail("channels do not fit group ", g.groups);
  const size_t lead = 3 - nd;
  for (size_t i = 0; i < 3; ++i) {
    bool real = i >= lead;
    size_t j = i - lead;
    g.in[i] = real ? win->in[j] : 1;
    g.out[i] = real ? win->out[j] : 1;
    g.k[i] = real ? win->kernel[j] : 1;
    g.s[i] = real ? win->strides[j] : 1;
    g.p[i] = real ? win->pads[j] : 0;
    g.d[i] = real ? win->dilations[j] : 1;
  }
  if (rec.direct) return Status::ok();
  KILN_ASSIGN_OR_RETURN(p.cudnn, make_cudnn(ctx, transpose, *win, rec, p));
  if (rec.cudnn && !p.cudnn) log_recorded_unusable(ctx, "cuDNN cannot take these shapes", "the direct kernel runs");
  return Status::ok();
}

template <class T>
void launch_direct(LaunchContext& ctx, bool transpose, const Geom& g) {
  const T* x = ctx.inputs[0].as<const T>();
  const T* w = ctx.inputs[1].as<const T>();
  const T* b = ctx.has_input(2) ? ctx.inputs[2].as<const T>() : nullptr;
  T* y = ctx.outputs[0].as<T>();
  const int64_t grid = cuda_grid_for(ctx.outputs[0].numel(), 256);
  if (transpose) conv_transpose_direct<T><<<grid, 256, 0, ctx.stream>>>(x, w, b, y, g);
  else conv_direct<T><<<grid, 256, 0, ctx.stream>>>(x, w, b, y, g);
}

template <class T>
void launch_epilogue(LaunchContext& ctx, const Geom& g, bool with_bias) {
  const int64_t total = ctx.outputs[0].numel();
  const T* bias = with_bias && ctx.has_input(2) ? ctx.inputs[2].as<const T>() : nullptr;
  const T* z = ctx.has_input(3) ? ctx.inputs[3].as<const T>() : nullptr;
  const bool relu = parse_activation(ctx.node.attr_string("activation", "")) == Activation::kRelu;
  if (!bias && !z && !relu) return;
  conv_epilogue<T><<<cuda_grid_for(total, 256), 256, 0, ctx.stream>>>(ctx.outputs[0].as<T>(), bias, z, relu, g.m,
                                                                        g.out[0] * g.out[1] * g.out[2], total);
}

template <bool transpose>
Status conv(LaunchContext& ctx) {
  const DeviceTensor &x = ctx.inputs[0], &w = ctx.inputs[1], &y = ctx.outputs[0];
  if (y.numel() == 0) return Status::ok();
  const std::string family = transpose ? "cuda.conv_transpose" : "cuda.conv";
  const std::string rest = ctx.tactic_rest(family);
  Recorded rec;
  rec.direct = rest == "direct";
  if (rest.rfind("cudnn.", 0) == 0) {
    rec.cudnn = transpose ? parse_cudnn_algo(kBwdDataAlgos, rest.substr(6), &rec.algo, &rec.math)
                          : parse_cudnn_algo(kFwdAlgos, rest.substr(6), &rec.algo, &rec.math);
    if (!rec.cudnn) return ctx.fail("tactic ", ctx.tactic, " names a cuDNN algorithm this build does not know; rebuild the engine");
  }
  ConvKey key{};
  key[0] = int64_t(y.dtype) * 2 + ctx.tf32;
  key[1] = int64_t(ctx.workspace ? ctx.workspace_bytes : 0);
  for (size_t i = 0; i < x.dims.size() && i < 5; ++i) {
    key[2 + i] = x.dims[i];
    key[7 + i] = w.dims[i];
    key[12 + i] = y.dims[i];
  }
  auto& plans = ctx.state_as<ConvState>().plans;
  auto it = plans.find(key);
  if (it == plans.end()) {
    if (plans.size() > 256) plans.clear();  // bounded: shape churn never grows it without end
    auto p = std::make_unique<ConvPlan>();
    KILN_RETURN_IF_ERROR(build_plan(ctx, transpose, rec, *p));
    it = plans.emplace(key, std::move(p)).first;
  }
  const ConvPlan& p = *it->second;
  if (ctx.selected)
    *ctx.selected = family + (p.cudnn ? ".cudnn." + (transpose ? cudnn_algo_name(kBwdDataAlgos, p.bwd, p.math)
                                                               : cudnn_algo_name(kFwdAlgos, p.fwd, p.math))
                                      : std::string(".direct"));
  if (!p.cudnn) {  // the direct kernel adds the bias itself
    switch (y.dtype) {
      case DataType::kFloat32: launch_direct<float>(ctx, transpose, p.g); launch_epilogue<float>(ctx, p.g, false); break;
      case DataType::kFloat16: launch_direct<__half>(ctx, transpose, p.g); launch_epilogue<__half>(ctx, p.g, false); break;
      case DataType::kBFloat16:
        launch_direct<__nv_bfloat16>(ctx, transpose, p.g);
        launch_epilogue<__nv_bfloat16>(ctx, p.g, false);
        break;
      default: return ctx.fail("no CUDA convolution for type ", dtype_name(y.dtype));
    }
    return Status::ok();
  }
  const float one = 1.f, zero = 0.f;
  const void* xp = x.data;
  void* ws = ctx.workspace;
  if (p.pad_bytes) {
    const int64_t grid = cuda_grid_for(p.pad.planes * p.pad.out[0] * p.pad.out[1] * p.pad.out[2], 256);
    if (y.dtype == DataType::kFloat16)
      pad_input<__half><<<grid, 256, 0, ctx.stream>>>(x.as<const __half>(), static_cast<__half*>(ws), p.pad);
    else
      pad_input<float><<<grid, 256, 0, ctx.stream>>>(x.as<const float>(), static_cast<float*>(ws), p.pad);
    xp = ws;
    ws = static_cast<char*>(ws) + p.pad_bytes;
  }
  if (transpose)
    KILN_CUDA_CHECK(cudnnConvolutionBackwardData(ctx.cudnn, &one, p.wd, w.data, p.xd, xp, p.cd, p.bwd, ws, p.ws,
                                                 &zero, p.yd, y.data));
  else
    KILN_CUDA_CHECK(cudnnConvolutionForward(ctx.cudnn, &one, p.xd, xp, p.wd, w.data, p.cd, p.fwd, ws, p.ws, &zero,
                                            p.yd, y.data));
  if (y.dtype == DataType::kFloat16) launch_epilogue<__half>(ctx, p.g, true);
  else launch_epilogue<float>(ctx, p.g, true);
  return Status::ok();
}

Support check_conv(const Node& n) {
  if (n.outputs.empty() || !n.outputs[0]) return Support::no("no output");
  const DataType t = n.outputs[0]->dtype;
  if (t != DataType::kFloat32 && t != DataType::kFloat16 && t != DataType::kBFloat16)
    return Support::no(std::string("element type ") + dtype_name(t));
  const Shape& s = n.inputs[0]->shape;
  if (!s.rank_known() || s.rank() < 3 || s.rank() > 5) return Support::no("input rank not in 3..5 (1-3 spatial dims)");
  return Support::yes();
}

bool nhwc(const Node& n) { return n.attr_string("layout", "NCHW") == "NHWC"; }

// kiln.ConvAct: NCHW here, channels-last (passes/convert_layout.cc) in conv_nhwc.cu.
Status conv_act(LaunchContext& ctx) { return nhwc(ctx.node) ? conv_nhwc(ctx) : conv<false>(ctx); }
Support check_conv_act(const Node& n) {
  if (nhwc(n)) return check_conv_nhwc(n);
  const auto act = parse_activation(n.attr_string("activation", ""));
  if (act != Activation::kNone && act != Activation::kRelu)
    return Support::no("NCHW kiln.ConvAct with activation " + n.attr_string("activation", ""));
  if (!n.attr_string("input_activation", "").empty()) return Support::no("NCHW kiln.ConvAct with an input activation");
  return check_conv(n);
}

}  // namespace

void register_cuda_conv_kernels(CudaKernelTable& t) {
  // Tactic families: the build picks cuda.conv.{cudnn.<algo>.<math>, direct} (conv_nhwc.cu adds
  // gemm1x1.cublaslt.<algo>, dw_tile.<rule>, dw_direct) and cuda.conv_transpose.{cudnn..., direct}.
  t.add({"", "Conv", "cuda.conv", conv<false>, check_conv, false, true});
  t.add({"", "ConvTranspose", "cuda.conv_transpose", conv<true>, check_conv, false, true});
  t.add({"kiln", "ConvAct", "cuda.conv", conv_act, check_conv_act, false, true});  // conv, then bias + residual + Relu in one pass
}

}  // namespace kiln::cuda
