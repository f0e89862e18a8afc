// CUDA kernels of the pointwise activations (Relu LeakyRelu Elu Selu Celu Sigmoid HardSigmoid
// HardSwish Softplus Softsign Tanh ThresholdedRelu Shrink Gelu Mish), PRelu (broadcast slope) and
// Clip. Math runs in float for float16/bfloat16/float32 (accurate libm, numerically stable forms)
// and in double for double; attributes travel by value in the functor. Semantics follow
// src/backends/cpu/kernels/activation.cc and elementwise_variadic.cc (Clip).
#include "backends/cuda/kernels/elementwise_common.cuh"

namespace kiln::cuda {

namespace {

using namespace ew;

template <class C> __device__ __forceinline__ C softplus(C x) {
  return x > C(0) ? x + m_log1p(m_exp(-x)) : m_log1p(m_exp(x));
}
template <class C> __device__ __forceinline__ C clamp01(C v) { return v < C(0) ? C(0) : v > C(1) ? C(1) : v; }

float attr(const Node& n, const char* key, float def) { return n.attr_float(key, def); }

struct ReluF { template <class C> __device__ C operator()(C x) const { return x > C(0) ? x : C(0); } };
struct LeakyReluF {
  float a = 0.01f;
  LeakyReluF() = default;
  explicit LeakyReluF(const Node& n) : a(attr(n, "alpha", 0.01f)) {}
  template <class C> __device__ C operator()(C x) const { return x >= C(0) ? x : C(a) * x; }
};
struct EluF {
  float a = 1.f;
  EluF() = default;
  explicit EluF(const Node& n) : a(attr(n, "alpha", 1.f)) {}
  template <class C> __device__ C operator()(C x) const { return x >= C(0) ? x : C(a) * m_expm1(x); }
};
struct SeluF {
  float a = 1.67326319217681884765625f, g = 1.05070102214050292968750f;
  SeluF() = default;
  explicit SeluF(const Node& n)
      : a(attr(n, "alpha", 1.67326319217681884765625f)), g(attr(n, "gamma", 1.05070102214050292968750f)) {}
  template <class C> __device__ C operator()(C x) const { return x > C(0) ? C(g) * x : C(g) * C(a) * m_expm1(x); }
};
struct CeluF {
  float a = 1.f;
  CeluF() = default;
  explicit CeluF(const Node& n) : a(attr(n, "alpha", 1.f)) {}
  template <class C> __device__ C operator()(C x) const {
    C e = C(a) * m_expm1(x / C(a));
    return (x > C(0) ? x : C(0)) + (e < C(0) ? e : C(0));
  }
};
struct SigmoidF {
  template <class C> __device__ C operator()(C x) const {
    if (x >= C(0)) return C(1) / (C(1) + m_exp(-x));
    C e = m_exp(x);
    return e / (C(1) + e);
  }
};
struct HardSigmoidF {
  float a = 0.2f, b = 0.5f;
  HardSigmoidF() = default;
  explicit HardSigmoidF(const Node& n) : a(attr(n, "alpha", 0.2f)), b(attr(n, "beta", 0.5f)) {}
  template <class C> __device__ C operator()(C x) const { return clamp01(C(a) * x + C(b)); }
};
struct HardSwishF {
  template <class C> __device__ C operator()(C x) const { return x * clamp01(x / C(6) + C(0.5)); }
};
struct SoftplusF { template <class C> __device__ C operator()(C x) const { return softplus(x); } };
struct SoftsignF { template <class C> __device__ C operator()(C x) const { return x / (C(1) + m_fabs(x)); } };
struct TanhF { template <class C> __device__ C operator()(C x) const { return m_tanh(x); } };
struct ThresholdedReluF {
  float a = 1.f;
  ThresholdedReluF() = default;
  explicit ThresholdedReluF(const Node& n) : a(attr(n, "alpha", 1.f)) {}
  template <class C> __device__ C operator()(C x) const { return x > C(a) ? x : C(0); }
};
// Numeric types: integers compute in double and truncate back, like the CPU kernel.
struct ShrinkF {
  float bias = 0.f, lambd = 0.5f;
  ShrinkF() = default;
  explicit ShrinkF(const Node& n) : bias(attr(n, "bias", 0.f)), lambd(attr(n, "lambd", 0.5f)) {}
  template <class C> __device__ C operator()(C xc) const {
    using M = std::conditional_t<std::is_floating_point_v<C>, C, double>;
    M x = static_cast<M>(xc), l = M(lambd), b = M(bias);
    return static_cast<C>(x < -l ? x + b : x > l ? x - b : M(0));
  }
};
struct MishF { template <class C> __device__ C operator()(C x) const { return x * m_tanh(softplus(x)); } };
struct GeluF {
  bool tanh_approx = false;
  GeluF() = default;
  explicit GeluF(const Node& n) : tanh_approx(n.attr_string("approximate", "none") == "tanh") {}
  template <class C> __device__ C operator()(C x) const {
    if (tanh_approx) {
      const C k = C(0.7978845608028654);  // sqrt(2 / pi)
      return C(0.5) * x * (C(1) + m_tanh(k * (x + C(0.044715) * x * x * x)));
    }
    return C(0.5) * x * (C(1) + m_erf(x * C(0.7071067811865476)));
  }
};

template <class F, uint32_t Mask>
Status run_act(LaunchContext& c) {
  const F f = make_functor<F>(c.node);
  Status s;
  bool ok = visit<Mask>(c.inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    s = launch_map<T, T>(c, f, c.outputs[0], {operand(c.inputs[0])});
  });
  if (!ok) return c.fail("no CUDA kernel for type ", dtype_name(c.inputs[0].dtype));
  return s;
}

template <uint32_t Mask>
Support check_act(const Node& n) {
  return check_types(n, {{0, Mask}});
}

Support check_gelu(const Node& n) {
  const std::string a = n.attr_string("approximate", "none");
  if (a != "none" && a != "tanh") return Support::no("Gelu approximate='" + a + "'");
  return check_act<kFloats>(n);
}

// ---- PRelu ----------------------------------------------------------------------------------
struct PReluF {
  template <class C> __device__ C operator()(C v, C a) const {
    if constexpr (std::is_unsigned_v<C>) return v;  // never negative
    else return v < C(0) ? C(a * v) : v;
  }
};

Status run_prelu(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  std::vector<int64_t> sd = c.inputs[1].dims;
  // Before opset 7 a 1-D slope of X's channel count applies along axis 1.
  if (c.node.opset < 7 && x.dims.size() >= 2 && sd.size() == 1 && sd[0] != 1 && sd[0] == x.dims[1]) {
    std::vector<int64_t> d(x.dims.size() - 1, 1);
    d[0] = sd[0];
    sd = d;
  }
  const std::array<Operand, 2> in{operand(x), Operand{c.inputs[1].data, sd}};
  Status s;
  bool ok = visit<kNumeric>(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    s = launch_map<T, T, T>(c, PReluF{}, c.outputs[0], in);
  });
  if (!ok) return c.fail("no CUDA kernel for type ", dtype_name(x.dtype));
  return s;
}

Support check_prelu(const Node& n) { return check_types(n, {{0, kNumeric}, {1, kNumeric}}); }

// ---- Clip -------------------------------------------------------------------------------------
// Bounds from attributes (before opset 11) travel by value; from inputs (opset 11+) they are read
// on the device from their one-element tensors, so non-constant bounds need no host sync.
// max then min, like numpy.clip: when min > max every element becomes max; NaN stays NaN.
template <class T>
struct ClipF {
  using C = calc_t<T>;
  C lo, hi;
  const T* lo_p = nullptr;
  const T* hi_p = nullptr;
  __device__ C operator()(C v) const {
    const C l = lo_p ? to_calc(*lo_p) : lo;
    const C h = hi_p ? to_calc(*hi_p) : hi;
    v = v < l ? l : v;
    return v > h ? h : v;
  }
};

Status run_clip(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  Status s;
  bool ok = visit<kNumeric>(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = calc_t<T>;
    ClipF<T> f{std::numeric_limits<C>::lowest(), std::numeric_limits<C>::max()};
    if (c.node.opset < 11) {
      if (c.node.has_attr("min")) f.lo = static_cast<C>(c.node.attr_float("min", 0.f));
      if (c.node.has_attr("max")) f.hi = static_cast<C>(c.node.attr_float("max", 0.f));
    } else {
      for (size_t i = 1; i < 3; ++i) {
        if (!c.has_input(i) || c.inputs[i].numel() == 0) continue;
        if (c.inputs[i].numel() > 1) { s = c.fail("input ", i, " must be a scalar, got ", c.inputs[i].numel(), " elements"); return; }
        if (c.inputs[i].dtype != x.dtype) { s = c.fail("input ", i, " has type ", dtype_name(c.inputs[i].dtype)); return; }
        (i == 1 ? f.lo_p : f.hi_p) = c.inputs[i].template as<T>();
      }
    }
    s = launch_map<T, T>(c, f, c.outputs[0], {operand(x)});
  });
  if (!ok) return c.fail("no CUDA kernel for type ", dtype_name(x.dtype));
  return s;
}

Support check_clip(const Node& n) { return check_types(n, {{0, kNumeric}, {1, kNumeric}, {2, kNumeric}}); }

}  // namespace

void register_cuda_elementwise_activation_kernels(CudaKernelTable& t) {
  const char* k = "cuda.elementwise";
  t.add({"", "Relu", k, run_act<ReluF, kNumeric>, check_act<kNumeric>});
  t.add({"", "LeakyRelu", k, run_act<LeakyReluF, kFloats>, check_act<kFloats>});
  t.add({"", "Elu", k, run_act<EluF, kFloats>, check_act<kFloats>});
  t.add({"", "Selu", k, run_act<SeluF, kFloats>, check_act<kFloats>});
  t.add({"", "Celu", k, run_act<CeluF, kFloats>, check_act<kFloats>});
  t.add({"", "Sigmoid", k, run_act<SigmoidF, kFloats>, check_act<kFloats>});
  t.add({"", "HardSigmoid", k, run_act<HardSigmoidF, kFloats>, check_act<kFloats>});
  t.add({"", "HardSwish", k, run_act<HardSwishF, kFloats>, check_act<kFloats>});
  t.add({"", "Softplus", k, run_act<SoftplusF, kFloats>, check_act<kFloats>});
  t.add({"", "Softsign", k, run_act<SoftsignF, kFloats>, check_act<kFloats>});
  t.add({"", "Tanh", k, run_act<TanhF, kFloats>, check_act<kFloats>});
  t.add({"", "ThresholdedRelu", k, run_act<ThresholdedReluF, kFloats>, check_act<kFloats>});
  t.add({"", "Shrink", k, run_act<ShrinkF, kNumeric>, check_act<kNumeric>});
  t.add({"", "Mish", k, run_act<MishF, kFloats>, check_act<kFloats>});
  t.add({"", "Gelu", k, run_act<GeluF, kFloats>, check_gelu});
  t.add({"", "PRelu", k, run_prelu, check_prelu});
  t.add({"", "Clip", k, run_clip, check_clip});
}

}  // namespace kiln::cuda
