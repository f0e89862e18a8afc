// CPU kernels of the elementwise family's unary ops: sign/rounding, exp/log, trigonometric and
// hyperbolic functions, IsNaN/IsInf.
#include <cmath>

#include "backends/cpu/kernels/elementwise_loops.h"

namespace kiln::cpu {

namespace {

Status neg(KernelContext& c) { return unary_kernel<NumericTypes>(c, [](auto x) { return decltype(x)(-x); }); }
Status abs_(KernelContext& c) {
  return unary_kernel<NumericTypes>(c, [](auto x) { return x < decltype(x)(0) ? decltype(x)(-x) : x; });
}
Status sign(KernelContext& c) {
  return unary_kernel<NumericTypes>(c, [](auto x) {
    using C = decltype(x);
    if constexpr (std::is_floating_point_v<C>) if (std::isnan(x)) return x;
    return C(C(0) < x) - C(x < C(0));
  });
}
Status reciprocal(KernelContext& c) {
  return unary_kernel<FloatTypes>(c, [](auto x) { return decltype(x)(1) / x; });
}
Status floor_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::floor(x); }); }
Status ceil_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::ceil(x); }); }
// nearbyint under the default rounding mode rounds halves to even, as ONNX Round requires.
Status round_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::nearbyint(x); }); }
Status sqrt_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::sqrt(x); }); }
Status exp_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::exp(x); }); }
Status log_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::log(x); }); }
Status erf_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::erf(x); }); }
Status sin_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::sin(x); }); }
Status cos_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::cos(x); }); }
Status tan_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::tan(x); }); }
Status asin_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::asin(x); }); }
Status acos_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::acos(x); }); }
Status atan_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::atan(x); }); }
Status sinh_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::sinh(x); }); }
Status cosh_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::cosh(x); }); }
Status asinh_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::asinh(x); }); }
Status acosh_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::acosh(x); }); }
Status atanh_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::atanh(x); }); }

Status isnan_(KernelContext& c) {
  return unary_kernel<FloatTypes, bool>(c, [](auto x) { return std::isnan(x); });
}
Status isinf_(KernelContext& c) {
  const bool neg = c.node().attr_int("detect_negative", 1) != 0;
  const bool pos = c.node().attr_int("detect_positive", 1) != 0;
  return unary_kernel<FloatTypes, bool>(c, [neg, pos](auto x) {
    return std::isinf(x) && ((x > 0 && pos) || (x < 0 && neg));
  });
}

}  // namespace

void register_elementwise_unary_kernels(KernelTable& t) {
  t.add("", "Neg", neg);
  t.add("", "Abs", abs_);
  t.add("", "Sign", sign);
  t.add("", "Reciprocal", reciprocal);
  t.add("", "Floor", floor_);
  t.add("", "Ceil", ceil_);
  t.add("", "Round", round_);
  t.add("", "Sqrt", sqrt_);
  t.add("", "Exp", exp_);
  t.add("", "Log", log_);
  t.add("", "Erf", erf_);
  t.add("", "Sin", sin_);
  t.add("", "Cos", cos_);
  t.add("", "Tan", tan_);
  t.add("", "Asin", asin_);
  t.add("", "Acos", acos_);
  t.add("", "Atan", atan_);
  t.add("", "Sinh", sinh_);
  t.add("", "Cosh", cosh_);
  t.add("", "Asinh", asinh_);
  t.add("", "Acosh", acosh_);
  t.add("", "Atanh", atanh_);
  t.add("", "IsNaN", isnan_);
  t.add("", "IsInf", isinf_);
}

}  // namespace kiln::cpu
