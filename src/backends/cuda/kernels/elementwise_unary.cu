// CUDA kernels of the elementwise family's unary ops: Abs Neg Sign (numeric), Reciprocal,
// rounding, exp/log/erf, trigonometric and hyperbolic functions (float types, computed in float
// for float16/bfloat16 and in double for double), IsNaN/IsInf (bool out), Not and BitwiseNot.
// All go through launch_map's contiguous, vectorized path. Semantics: cpu/kernels/elementwise_unary.cc.
#include "backends/cuda/kernels/elementwise_common.cuh"

namespace kiln::cuda {

namespace {

using namespace ew;

#define KILN_EW_FN(F, expr) \
  struct F { template <class C> __device__ C operator()(C x) const { return expr; } };
KILN_EW_FN(FloorF, m_floor(x))
KILN_EW_FN(CeilF, m_ceil(x))
KILN_EW_FN(RoundF, m_rint(x))
KILN_EW_FN(SqrtF, m_sqrt(x))
KILN_EW_FN(ExpF, m_exp(x))
KILN_EW_FN(LogF, m_log(x))
KILN_EW_FN(ErfF, m_erf(x))
KILN_EW_FN(SinF, m_sin(x))
KILN_EW_FN(CosF, m_cos(x))
KILN_EW_FN(TanF, m_tan(x))
KILN_EW_FN(AsinF, m_asin(x))
KILN_EW_FN(AcosF, m_acos(x))
KILN_EW_FN(AtanF, m_atan(x))
KILN_EW_FN(SinhF, m_sinh(x))
KILN_EW_FN(CoshF, m_cosh(x))
KILN_EW_FN(AsinhF, m_asinh(x))
KILN_EW_FN(AcoshF, m_acosh(x))
KILN_EW_FN(AtanhF, m_atanh(x))
KILN_EW_FN(ReciprocalF, C(1) / x)
KILN_EW_FN(NegF, C(-x))
KILN_EW_FN(BitNotF, C(~x))
#undef KILN_EW_FN

struct AbsF {
  template <class C> __device__ C operator()(C x) const {
    if constexpr (std::is_unsigned_v<C>) return x;
    else return x < C(0) ? C(-x) : x;
  }
};
struct SignF {
  template <class C> __device__ C operator()(C x) const {
    if constexpr (std::is_floating_point_v<C>) if (isnan(x)) return x;
    if constexpr (std::is_unsigned_v<C>) return C(x != 0);
    else return C(C(C(0) < x) - C(x < C(0)));
  }
};
struct NotF { __device__ bool operator()(bool x) const { return !x; } };
struct IsNanF { template <class C> __device__ bool operator()(C x) const { return isnan(x); } };
struct IsInfF {
  bool neg = true, pos = true;
  IsInfF() = default;
  explicit IsInfF(const Node& n)
      : neg(n.attr_int("detect_negative", 1) != 0), pos(n.attr_int("detect_positive", 1) != 0) {}
  template <class C> __device__ bool operator()(C x) const { return isinf(x) && ((x > 0 && pos) || (x < 0 && neg)); }
};

// y = f(x); the output has x's type, or bool when Bool.
template <class F, uint32_t Mask, bool Bool = false>
Status run_unary(LaunchContext& c) {
  const F f = make_functor<F>(c.node);
  Status s;
  bool ok = visit<Mask>(c.inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Out = std::conditional_t<Bool, bool, T>;
    s = launch_map<Out, T>(c, f, c.outputs[0], {operand(c.inputs[0])});
  });
  if (!ok) return c.fail("no CUDA kernel for type ", dtype_name(c.inputs[0].dtype));
  return s;
}

template <uint32_t Mask>
Support check_unary(const Node& n) {
  return check_types(n, {{0, Mask}});
}

}  // namespace

void register_cuda_elementwise_unary_kernels(CudaKernelTable& t) {
  const char* k = "cuda.elementwise";
  t.add({"", "Neg", k, run_unary<NegF, kNumeric>, check_unary<kNumeric>});
  t.add({"", "Abs", k, run_unary<AbsF, kNumeric>, check_unary<kNumeric>});
  t.add({"", "Sign", k, run_unary<SignF, kNumeric>, check_unary<kNumeric>});
  t.add({"", "Reciprocal", k, run_unary<ReciprocalF, kFloats>, check_unary<kFloats>});
  t.add({"", "Floor", k, run_unary<FloorF, kFloats>, check_unary<kFloats>});
  t.add({"", "Ceil", k, run_unary<CeilF, kFloats>, check_unary<kFloats>});
  t.add({"", "Round", k, run_unary<RoundF, kFloats>, check_unary<kFloats>});
  t.add({"", "Sqrt", k, run_unary<SqrtF, kFloats>, check_unary<kFloats>});
  t.add({"", "Exp", k, run_unary<ExpF, kFloats>, check_unary<kFloats>});
  t.add({"", "Log", k, run_unary<LogF, kFloats>, check_unary<kFloats>});
  t.add({"", "Erf", k, run_unary<ErfF, kFloats>, check_unary<kFloats>});
  t.add({"", "Sin", k, run_unary<SinF, kFloats>, check_unary<kFloats>});
  t.add({"", "Cos", k, run_unary<CosF, kFloats>, check_unary<kFloats>});
  t.add({"", "Tan", k, run_unary<TanF, kFloats>, check_unary<kFloats>});
  t.add({"", "Asin", k, run_unary<AsinF, kFloats>, check_unary<kFloats>});
  t.add({"", "Acos", k, run_unary<AcosF, kFloats>, check_unary<kFloats>});
  t.add({"", "Atan", k, run_unary<AtanF, kFloats>, check_unary<kFloats>});
  t.add({"", "Sinh", k, run_unary<SinhF, kFloats>, check_unary<kFloats>});
  t.add({"", "Cosh", k, run_unary<CoshF, kFloats>, check_unary<kFloats>});
  t.add({"", "Asinh", k, run_unary<AsinhF, kFloats>, check_unary<kFloats>});
  t.add({"", "Acosh", k, run_unary<AcoshF, kFloats>, check_unary<kFloats>});
  t.add({"", "Atanh", k, run_unary<AtanhF, kFloats>, check_unary<kFloats>});
  t.add({"", "IsNaN", k, run_unary<IsNanF, kFloats, true>, check_unary<kFloats>});
  t.add({"", "IsInf", k, run_unary<IsInfF, kFloats, true>, check_unary<kFloats>});
  t.add({"", "Not", k, run_unary<NotF, kBool>, check_unary<kBool>});
  t.add({"", "BitwiseNot", k, run_unary<BitNotF, kInts>, check_unary<kInts>});
}

}  // namespace kiln::cuda
