// CPU kernels of the elementwise family: broadcasting binary arithmetic, Pow, Mod, BitShift,
// logic and comparisons. Unary math, the variadic ops and Cast live in elementwise_*.cc.
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/kernels/elementwise_loops.h"

namespace kiln::cpu {

void register_elementwise_unary_kernels(KernelTable& t);
void register_elementwise_variadic_kernels(KernelTable& t);
void register_cast_kernels(KernelTable& t);
void register_bit_cast_kernels(KernelTable& t);

namespace {

Status add(KernelContext& c) { return binary_kernel<NumericTypes>(c, [](auto a, auto b) { return a + b; }); }
Status sub(KernelContext& c) { return binary_kernel<NumericTypes>(c, [](auto a, auto b) { return a - b; }); }
Status mul(KernelContext& c) { return binary_kernel<NumericTypes>(c, [](auto a, auto b) { return a * b; }); }
Status div(KernelContext& c) {
  // Integer division by zero is undefined in ONNX; return 0 rather than trap. The most negative
  // value divided by -1 overflows; return the wrapped result instead of trapping.
  return binary_kernel<NumericTypes>(c, [](auto a, auto b) {
    using C = decltype(a);
    if constexpr (std::is_integral_v<C>) {
      if (b == 0) return C(0);
      if constexpr (std::is_signed_v<C>) if (b == C(-1)) return C(-a);
    }
    return C(a / b);
  });
}

// Python-style modulo for integers: the result takes the divisor's sign.
template <class C>
C int_mod(C a, C b, bool fmod) {
  if (b == 0) return C(0);
  if constexpr (std::is_signed_v<C>) {
    if (b == C(-1)) return C(0);  // also avoids the INT_MIN % -1 trap
    C r = C(a % b);
    if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = C(r + b);
    return r;
  } else {
    return C(a % b);
  }
}

Status mod(KernelContext& c) {
  const bool fmod = c.node().attr_int("fmod", 0) != 0;
  return binary_kernel<NumericTypes>(c, [fmod](auto a, auto b) {
    using C = decltype(a);
    if constexpr (std::is_integral_v<C>) {
      return int_mod<C>(a, b, fmod);
    } else {
      C r = std::fmod(a, b);
      if (fmod) return r;
      // numpy's mod (ONNX's reference for fmod=0): the result takes the divisor's sign, a zero
      // result included.
      if (r == 0) return C(std::copysign(C(0), b));
      if ((r < 0) != (b < 0)) r += b;
      return r;
    }
  });
}

// Pow's exponent may have any numeric type; it is read as double, and the result computed in
// double and converted to the base's type (truncating for integer bases, like numpy).
Status pow_(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor b = legacy_aligned_rhs(ctx);
  std::vector<double> e(static_cast<size_t>(b.numel()));
  for (int64_t i = 0; i < b.numel(); ++i) e[i] = b.get_as_double(i);
  Tensor& y = ctx.output(0);
  Status s = visit_dtype(a.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* pa = a.data<T>();
    T* py = y.mutable_data<T>();
    for_each_broadcast<2>(y.dims(), {a.dims(), b.dims()}, [&](int64_t i, const std::array<int64_t, 2>& o) {
      double r = std::pow(static_cast<double>(static_cast<C>(pa[o[0]])), e[o[1]]);
      if constexpr (std::is_integral_v<C>) {
        // Out-of-range float-to-int conversion is undefined; saturate instead.
        if (std::isnan(r)) r = 0;
        r = std::fmin(std::fmax(r, double(std::numeric_limits<C>::lowest())), double(std::numeric_limits<C>::max()));
      }
      py[i] = static_cast<T>(static_cast<C>(r));
    });
  });
  return s.with_context(ctx.node().label() + ": ");
}

// Shifts follow numpy as ONNX's reference does: a shift count outside [0, width) gives 0 (or -1
// for a right shift of a negative value); a right shift of a signed value is arithmetic; a left
// shift wraps within the type (done on the unsigned twin, since signed overflow is undefined).
Status bitshift(KernelContext& c) {
  const bool left = c.node().attr_string("direction", "") == "LEFT";
  return binary_kernel<IntegerTypes>(c, [left](auto a, auto b) {
    using C = decltype(a);
    using U = std::make_unsigned_t<C>;
    bool negative_shift = false, negative_value = false;
    if constexpr (std::is_signed_v<C>) {
      negative_shift = b < 0;
      negative_value = a < 0;
    }
    const bool in_range = !negative_shift && static_cast<U>(b) < U(sizeof(C) * 8);
    if (left) return in_range ? C(static_cast<U>(static_cast<U>(a) << static_cast<U>(b))) : C(0);
    if (!in_range) return negative_value ? C(-1) : C(0);
    return C(a >> b);
  });
}

Status and_(KernelContext& c) { return compare_kernel<BoolType>(c, [](bool a, bool b) { return a && b; }); }
Status or_(KernelContext& c) { return compare_kernel<BoolType>(c, [](bool a, bool b) { return a || b; }); }
Status xor_(KernelContext& c) { return compare_kernel<BoolType>(c, [](bool a, bool b) { return a != b; }); }
Status not_(KernelContext& c) { return unary_kernel<BoolType>(c, [](bool x) { return !x; }); }

Status bitwise_and(KernelContext& c) {
  return binary_kernel<IntegerTypes>(c, [](auto a, auto b) { return decltype(a)(a & b); });
}
Status bitwise_or(KernelContext& c) {
  return binary_kernel<IntegerTypes>(c, [](auto a, auto b) { return decltype(a)(a | b); });
}
Status bitwise_xor(KernelContext& c) {
  return binary_kernel<IntegerTypes>(c, [](auto a, auto b) { return decltype(a)(a ^ b); });
}
Status bitwise_not(KernelContext& c) {
  return unary_kernel<IntegerTypes>(c, [](auto x) { return decltype(x)(~x); });
}

Status equal(KernelContext& c) { return compare_kernel<AllTypes>(c, [](auto a, auto b) { return a == b; }); }
Status less(KernelContext& c) { return compare_kernel<NumericTypes>(c, [](auto a, auto b) { return a < b; }); }
Status greater(KernelContext& c) { return compare_kernel<NumericTypes>(c, [](auto a, auto b) { return a > b; }); }
Status less_equal(KernelContext& c) {
  return compare_kernel<NumericTypes>(c, [](auto a, auto b) { return a <= b; });
}
Status greater_equal(KernelContext& c) {
  return compare_kernel<NumericTypes>(c, [](auto a, auto b) { return a >= b; });
}

}  // namespace

void register_elementwise_kernels(KernelTable& t) {
  register_bit_cast_kernels(t);
  t.add("", "Add", add);
  t.add("", "Sub", sub);
  t.add("", "Mul", mul);
  t.add("", "Div", div);
  t.add("", "Mod", mod);
  t.add("", "Pow", pow_);
  t.add("", "BitShift", bitshift);
  t.add("", "And", and_);
  t.add("", "Or", or_);
  t.add("", "Xor", xor_);
  t.add("", "Not", not_);
  t.add("", "BitwiseAnd", bitwise_and);
  t.add("", "BitwiseOr", bitwise_or);
  t.add("", "BitwiseXor", bitwise_xor);
  t.add("", "BitwiseNot", bitwise_not);
  t.add("", "Equal", equal);
  t.add("", "Less", less);
  t.add("", "Greater", greater);
  t.add("", "LessOrEqual", less_equal);
  t.add("", "GreaterOrEqual", greater_equal);
  register_elementwise_unary_kernels(t);
  register_elementwise_variadic_kernels(t);
  register_cast_kernels(t);
}

}  // namespace kiln::cpu
