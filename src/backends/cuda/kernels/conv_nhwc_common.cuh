// What the channels-last convolution kernels share (conv_nhwc.cu: cuDNN, the 1x1 GEMM and the
// epilogue; conv_nhwc_depthwise.cu: the depthwise kernels): element loads and stores in float,
// the layer's activation, and the depthwise entry point.
#pragma once
#include <cuda_fp16.h>

#include <string>

#include <cstdint>

#include "backends/cuda/kernels/nhwc_window.cuh"
#include "backends/cuda/launch.h"
#include "ir/activation.h"

namespace kiln::cuda::nhwc {

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
  // The kernels' form of ir/activation.h's vocabulary (kiln.ConvAct's schema admits only these).
  static Kind of(const Node& n, const char* key) {
    switch (parse_activation(n.attr_string(key, "")).value_or(Activation::kNone)) {
      case Activation::kRelu: return kRelu;
      case Activation::kClip: return kClip;
      case Activation::kSilu: return kSilu;
      default: return kNone;
    }
  }
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

// A depthwise convolution (group == C == M) with tap-major weights [kH, kW, 1, C] over
// channels-last X (input 0), bias (input 2) and residual Z (input 3) when present: in_act on
// each input element, act on each output (conv_nhwc_depthwise.cu). allow_tile false: the direct
// kernel even where a tile kernel takes the shape (the tactic cuda.conv.dw_direct, which tuning
// may pick over the tile kernel).
void depthwise(LaunchContext& ctx, const NhwcWindow& g, const Act& in_act, const Act& act, bool allow_tile = true);
// The kernel depthwise() runs for this geometry and type, as a tactic id's last words:
// "dw_tile.k<K>s<S>" (the shared-memory tile kernel) or "dw_direct".
std::string depthwise_rule(DataType t, const NhwcWindow& g);

}  // namespace kiln::cuda::nhwc
