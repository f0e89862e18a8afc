// CUDA kernel of kiln.ConvAct {layout="NHWC"} (made by passes/convert_layout.cc): a 2-D
// convolution with X [N,H,W,C], W [M,kH,kW,C/g], Z and Y [N,oH,oW,M], float16 or float32.
// cuDNN's tensor-core convolutions are NHWC-native, so unlike NCHW (conv.cu) no layout transform
// runs around them. Bias + residual + Relu run inside cuDNN's fused
// cudnnConvolutionBiasActivationForward where it applies (Relu with any algorithm; no
// activation only with IMPLICIT_PRECOMP_GEMM, cuDNN's rule), else our own one-pass epilogue
// (which also applies Clip and Silu, the activations cuDNN's fused call does not take).
// Depthwise convolutions (group == C == M) with tap-major weights (weight_layout="HWCM") run our
// own kernels (conv_nhwc_depthwise.cu), which also apply the input activation (input_activation):
// cuDNN's NHWC depthwise kernels measured 10-30x slower than memory speed on H100.
// 1x1 convolutions (stride 1, no padding, one group) run as one cuBLASLt GEMM (conv_gemm).
// Tactics (all of family cuda.conv, picked at build time at the opt shapes and recorded):
//   cuda.conv.dw_tile.k<K>s<S> / cuda.conv.dw_direct    the depthwise kernels (the rule by geometry)
//   cuda.conv.gemm1x1.cublaslt.<algo>                   1x1 on cuBLASLt, its heuristic's algorithm
//   cuda.conv.cudnn.<algo>.<math>                       cuDNN: cudnnFindConvolutionForwardAlgorithmEx
//     at build time on the build's GPU (timed twice, the second kept); runs never time again.
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/conv_nhwc.h"
#include "backends/cuda/kernels/conv_nhwc_common.cuh"
#include "backends/cuda/kernels/cudnn_algo.h"
#include "backends/cuda/kernels/gemm_epilogue.h"
#include "ir/ops/conv_window.h"

#pragma nv_diag_suppress 1444  // cuDNN 9 marks the legacy convolution API deprecated; 9.14 has it
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace kiln::cuda {

namespace {

using nhwc::Act;
using nhwc::ld;
using nhwc::st;

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

struct Plan {
  bool depthwise = false;
  bool dw_direct = false;  // depthwise: the direct kernel even where a tile kernel takes the shape (tactic dw_direct)
  bool gemm = false;  // 1x1, stride 1, no padding, one group: X [N*H*W, C] x W^T [C, M] on cuBLASLt
  NhwcWindow dw{};  // depthwise geometry
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
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
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

// One layer's plans in one context, by shape (a plan changes after it is built: fused_ok), and
// the cuBLASLt plans of a 1x1 layer.
using Key = std::array<int64_t, 11>;
struct NhwcState : LayerState {
  std::map<Key, std::unique_ptr<Plan>> plans;
  GemmPlans gemm;
};

size_t ws_limit(const LaunchContext& ctx) { return ctx.workspace ? ctx.workspace_bytes : 0; }

// The fused call's rule: no activation only with IMPLICIT_PRECOMP_GEMM.
bool fusable(const Plan& p, bool has_bias) {
  return has_bias && p.fused_ok &&
         (p.relu || (p.act.kind == Act::kNone && p.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM));
}

// `rest`: the recorded tactic id after "cuda.conv." ("" at build time).
Status build(LaunchContext& ctx, const std::string& rest, Plan& p) {
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
  p.act.kind = Act::of(n, "activation");
  p.act.lo = n.attr_float("act_min", -INFINITY);
  p.act.hi = n.attr_float("act_max", INFINITY);
  p.relu = p.act.kind == Act::kRelu;
  p.in_act.kind = Act::of(n, "input_activation");
  p.in_act.lo = n.attr_float("in_act_min", -INFINITY);
  p.in_act.hi = n.attr_float("in_act_max", INFINITY);
  // The depthwise kernels index with 64-bit pixel offsets: no size limit. A depthwise layer
  // with [M,kH,kW,1] weights (not made by convert_layout) runs on cuDNN.
  if (hwcm && groups > 1 && groups == x.dims[3] && groups == p.m && w_cg == 1 && w_m == p.m) {
    p.depthwise = true;
    p.dw = {int(x.dims[0]), int(x.dims[1]), int(x.dims[2]), int(x.dims[3]), int(y.dims[1]), int(y.dims[2]),
            int(kh), int(kw), int(win->strides[0]), int(win->strides[1]), int(win->pads[0]),
            int(win->pads[1]), int(win->dilations[0]), int(win->dilations[1])};
    const std::string rule = nhwc::depthwise_rule(y.dtype, p.dw);
    p.dw_direct = rest == "dw_direct";  // runs every shape (tuning may pick it over a tile kernel)
    if (!rest.empty() && rest != rule && rest != "heuristic" && !p.dw_direct)
      log_recorded_unusable(ctx, "the depthwise rule for these shapes is " + rule, "cuda.conv." + rule + " runs");
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
  p.math = y.dtype == DataType::kFloat16 ? CUDNN_TENSOR_OP_MATH : no_tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  if (rest.rfind("cudnn.", 0) == 0) {  // the build's choice, if it runs at these shapes
    int algo = 0;
    cudnnMathType_t math{};
    if (!parse_cudnn_algo(kFwdAlgos, rest.substr(6), &algo, &math))
      return ctx.fail("tactic ", ctx.tactic, " names a cuDNN algorithm this build does not know; rebuild the engine");
    size_t ws = 0;
    cudnnStatus_t st = cudnnSetConvolutionMathType(p.cd, math);
    if (st == CUDNN_STATUS_SUCCESS)
      st = cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, p.xd, p.wd, p.cd, p.yd, cudnnConvolutionFwdAlgo_t(algo), &ws);
    if (st == CUDNN_STATUS_SUCCESS && ws <= ws_limit(ctx)) {
      p.algo = cudnnConvolutionFwdAlgo_t(algo);
      p.math = math;
      p.ws = ws;
      return Status::ok();
    }
    log_recorded_unusable(ctx, st != CUDNN_STATUS_SUCCESS ? cudnnGetErrorString(st) : "workspace above the limit",
                          "cuDNN's heuristic picks for these shapes");
    KILN_CUDA_CHECK(cudnnSetConvolutionMathType(p.cd, p.math));
  }
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
    if (!no_tf32) p.math = perf[i].mathType;
    p.ws = ws;
    return Status::ok();
  }
  return ctx.fail("cuDNN has no NHWC algorithm for this convolution within the workspace");
}

// Build time: times the algorithms on the layer's buffers (writes y, which the run then
// overwrites). Without an activation, IMPLICIT_PRECOMP_GEMM (the one the fused call takes) wins
// unless another is more than 15% faster: the separate epilogue pass costs about that much.
void find(LaunchContext& ctx, Plan& p) {
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
      ws > ws_limit(ctx)) {
    cudnnSetConvolutionMathType(p.cd, p.math);  // keep the heuristic's choice
    return;
  }
  p.algo = best->algo;
  p.math = best->mathType;
  p.ws = ws;
}

// Our epilogue pass over y: the bias and the residual where the convolution left them out, and
// the activation. Nothing to add and no activation: no pass.
template <class T>
void epilogue(LaunchContext& ctx, const Plan& p, bool add_bias, bool add_z) {
  const T* bias = add_bias && ctx.has_input(2) ? ctx.inputs[2].as<const T>() : nullptr;
  const T* z = add_z && ctx.has_input(3) ? ctx.inputs[3].as<const T>() : nullptr;
  if (!bias && !z && p.act.kind == Act::kNone) return;
  const int64_t total = ctx.outputs[0].numel();
  nhwc_epilogue<T><<<cuda_grid_for(total, 256), 256, 0, ctx.stream>>>(ctx.outputs[0].as<T>(), bias, z, p.act, p.m, total);
}
void epilogue(LaunchContext& ctx, const Plan& p, bool add_bias, bool add_z) {
  if (ctx.outputs[0].dtype == DataType::kFloat16) epilogue<__half>(ctx, p, add_bias, add_z);
  else epilogue<float>(ctx, p, add_bias, add_z);
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
  g.plans = &ctx.state_as<NhwcState>().gemm;
  const std::string rest = ctx.tactic_rest("cuda.conv.gemm1x1.cublaslt");
  g.algo = rest == "heuristic" ? "" : rest;
  g.selected = ctx.selected;
  g.id_prefix = "cuda.conv.gemm1x1.cublaslt.";
  KILN_RETURN_IF_ERROR(run_gemm(ctx, g));
  if (!relu) epilogue(ctx, p, false, false);  // Clip, Silu
  return Status::ok();
}

}  // namespace

Status conv_nhwc(LaunchContext& ctx) {
  const DeviceTensor &x = ctx.inputs[0], &w = ctx.inputs[1], &y = ctx.outputs[0];
  if (y.numel() == 0) return Status::ok();
  Key key{};
  key[0] = int64_t(y.dtype) * 2 + ctx.tf32;
  key[1] = int64_t(ws_limit(ctx));
  for (size_t i = 0; i < 4 && i < x.dims.size() && i < w.dims.size(); ++i) {
    key[2 + i] = x.dims[i];
    key[6 + i] = w.dims[i];
  }
  const std::string rest = ctx.tactic_rest("cuda.conv");
  auto& plans = ctx.state_as<NhwcState>().plans;
  auto it = plans.find(key);
  if (it == plans.end()) {
    if (plans.size() > 256) plans.clear();  // bounded: shape churn never grows it without end
    auto p = std::make_unique<Plan>();
    KILN_RETURN_IF_ERROR(build(ctx, rest, *p));
    it = plans.emplace(key, std::move(p)).first;
  }
  Plan& p = *it->second;
  if (p.depthwise) {
    // Variants: the shape's tile kernel (dw_tile.k<K>s<S>) where one takes it, and the direct kernel.
    const std::string rule = nhwc::depthwise_rule(y.dtype, p.dw);
    if (ctx.candidates)
      for (const std::string& id : {"cuda.conv." + rule, std::string("cuda.conv.dw_direct")})
        if (int(ctx.candidates->size()) < ctx.max_candidates &&
            std::find(ctx.candidates->begin(), ctx.candidates->end(), id) == ctx.candidates->end())
          ctx.candidates->push_back(id);
    if (ctx.selected) *ctx.selected = "cuda.conv." + (p.dw_direct ? std::string("dw_direct") : rule);
    nhwc::depthwise(ctx, p.dw, p.in_act, p.act, !p.dw_direct);
    return Status::ok();
  }
  if (p.gemm) return conv_gemm(ctx, p);
  if (ctx.selected) {
    find(ctx, p);
    *ctx.selected = "cuda.conv.cudnn." + cudnn_algo_name(kFwdAlgos, p.algo, p.math);
  }
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
  epilogue(ctx, p, true, true);
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
