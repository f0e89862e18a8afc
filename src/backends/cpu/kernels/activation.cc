// CPU kernels of the activation family. Pointwise activations compute in double (then round
// to the element type) so float16 results are correctly rounded; Softmax/LogSoftmax/Hardmax
// walk rows of [outer, n, inner] views of the input.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/kernels/elementwise_loops.h"

namespace kiln::cpu {

namespace {

// Applies f(double) -> double to every element of a float (or, with Set, numeric) tensor.
template <class Set = FloatTypes, class F>
Status map_double(KernelContext& ctx, F f) {
  return unary_kernel<Set>(ctx, [&](auto x) { return f(static_cast<double>(x)); });
}

float attr(const KernelContext& ctx, const char* key, float def) { return ctx.node().attr_float(key, def); }

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

Status relu(KernelContext& c) {
  return unary_kernel<NumericTypes>(c, [](auto x) { return x > decltype(x)(0) ? x : decltype(x)(0); });
}
Status leaky_relu(KernelContext& c) {
  double a = attr(c, "alpha", 0.01f);
  return map_double(c, [a](double x) { return x >= 0 ? x : a * x; });
}
Status elu(KernelContext& c) {
  double a = attr(c, "alpha", 1.0f);
  return map_double(c, [a](double x) { return x >= 0 ? x : a * std::expm1(x); });
}
Status selu(KernelContext& c) {
  double a = attr(c, "alpha", 1.67326319217681884765625f), g = attr(c, "gamma", 1.05070102214050292968750f);
  return map_double(c, [a, g](double x) { return x > 0 ? g * x : g * a * std::expm1(x); });
}
Status celu(KernelContext& c) {
  double a = attr(c, "alpha", 1.0f);
  return map_double(c, [a](double x) { return std::max(0.0, x) + std::min(0.0, a * std::expm1(x / a)); });
}
Status sigmoid(KernelContext& c) {
  return map_double(c, [](double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); });
}
Status hard_sigmoid(KernelContext& c) {
  double a = attr(c, "alpha", 0.2f), b = attr(c, "beta", 0.5f);
  return map_double(c, [a, b](double x) { return std::clamp(a * x + b, 0.0, 1.0); });
}
Status hard_swish(KernelContext& c) {
  return map_double(c, [](double x) { return x * std::clamp(x / 6 + 0.5, 0.0, 1.0); });
}
Status softplus_(KernelContext& c) { return map_double(c, softplus); }
Status softsign(KernelContext& c) { return map_double(c, [](double x) { return x / (1 + std::fabs(x)); }); }
Status tanh_(KernelContext& c) { return map_double(c, [](double x) { return std::tanh(x); }); }
Status thresholded_relu(KernelContext& c) {
  double a = attr(c, "alpha", 1.0f);
  return map_double(c, [a](double x) { return x > a ? x : 0.0; });
}
Status shrink(KernelContext& c) {
  double bias = attr(c, "bias", 0.0f), lambd = attr(c, "lambd", 0.5f);
  return map_double<NumericTypes>(c, [=](double x) { return x < -lambd ? x + bias : x > lambd ? x - bias : 0.0; });
}
Status mish(KernelContext& c) { return map_double(c, [](double x) { return x * std::tanh(softplus(x)); }); }
Status gelu(KernelContext& c) {
  if (c.node().attr_string("approximate", "none") == "tanh") {
    const double k = std::sqrt(2.0 / M_PI);
    return map_double(c, [k](double x) { return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x))); });
  }
  return map_double(c, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); });
}

Status swish(KernelContext& c) {
  double a = attr(c, "alpha", 1.0f);
  return map_double(c, [a](double x) { return x / (1 + std::exp(-a * x)); });
}

// Swish(A) * B with the reference's roundings to the element type after each step, so float16
// results match it bit for bit rather than a float64 ideal.
Status swiglu(KernelContext& ctx) {
  const Tensor &a = ctx.input(0), &b = ctx.input(1);
  if (a.dims() != b.dims() || a.dtype() != b.dtype())
    return ctx.fail("A ", a.describe(), " and B ", b.describe(), " must have the same type and shape");
  const double alpha = attr(ctx, "alpha", 1.0f);
  Status s = visit_dtype(a.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    auto r = [](double v) { return static_cast<double>(static_cast<C>(static_cast<T>(static_cast<C>(v)))); };
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* py = ctx.output(0).mutable_data<T>();
    for (int64_t i = 0; i < a.numel(); ++i) {
      const double x = static_cast<C>(pa[i]);
      const double sig = r(1 / r(1 + r(std::exp(r(-alpha * x)))));
      py[i] = static_cast<T>(static_cast<C>(r(x * sig) * static_cast<C>(pb[i])));
    }
  });
  return s.with_context(ctx.node().label() + ": ");
}

// Before opset 7 a 1-D slope of X's channel count applies along axis 1 (see the schema).
Status prelu(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor slope = ctx.input(1);
  if (ctx.opset() < 7 && x.rank() >= 2 && slope.rank() == 1 && slope.numel() != 1 && slope.dim(0) == x.dim(1)) {
    std::vector<int64_t> dims(x.rank() - 1, 1);
    dims[0] = slope.dim(0);
    KILN_ASSIGN_OR_RETURN(slope, slope.reshaped(dims));
  }
  Status s = visit_dtype(x.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    broadcast_binary<T, T>(x, slope, ctx.output(0), [](auto v, auto a) { return v < decltype(v)(0) ? a * v : v; });
  });
  return s.with_context(ctx.node().label() + ": ");
}

}  // namespace

void register_softmax_kernels(KernelTable& t);

void register_activation_kernels(KernelTable& t) {
  t.add("", "Relu", relu);
  t.add("", "LeakyRelu", leaky_relu);
  t.add("", "Elu", elu);
  t.add("", "Selu", selu);
  t.add("", "Celu", celu);
  t.add("", "Sigmoid", sigmoid);
  t.add("", "HardSigmoid", hard_sigmoid);
  t.add("", "HardSwish", hard_swish);
  t.add("", "Softplus", softplus_);
  t.add("", "Softsign", softsign);
  t.add("", "Tanh", tanh_);
  t.add("", "ThresholdedRelu", thresholded_relu);
  t.add("", "Shrink", shrink);
  t.add("", "Mish", mish);
  t.add("", "Swish", swish);
  t.add("", "SwiGLU", swiglu);
  t.add("", "Gelu", gelu);
  t.add("", "PRelu", prelu);
  register_softmax_kernels(t);
}

}  // namespace kiln::cpu
