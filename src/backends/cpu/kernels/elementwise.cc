// CPU kernels of the elementwise family. Binary ops share one broadcasting loop; unary ops
// one map loop; both compute in compute_t<T> (float for float16/bfloat16).
#include <cmath>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

template <class Set, class Op>
Status binary_kernel(KernelContext& ctx, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& y = ctx.output(0);
  return visit_dtype(a.dtype(), Set{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* py = y.mutable_data<T>();
    for_each_broadcast<2>(y.dims(), {a.dims(), b.dims()}, [&](int64_t i, const std::array<int64_t, 2>& o) {
      py[i] = static_cast<T>(op(static_cast<C>(pa[o[0]]), static_cast<C>(pb[o[1]])));
    });
  });
}

template <class Set, class Op>
Status unary_kernel(KernelContext& ctx, Op op) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  return visit_dtype(x.dtype(), Set{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* px = x.data<T>();
    T* py = y.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = static_cast<T>(op(static_cast<C>(px[i])));
  });
}

Status add(KernelContext& c) { return binary_kernel<NumericTypes>(c, [](auto a, auto b) { return a + b; }); }
Status sub(KernelContext& c) { return binary_kernel<NumericTypes>(c, [](auto a, auto b) { return a - b; }); }
Status mul(KernelContext& c) { return binary_kernel<NumericTypes>(c, [](auto a, auto b) { return a * b; }); }
Status div(KernelContext& c) {
  // Integer division by zero is undefined in ONNX; return 0 rather than trap.
  return binary_kernel<NumericTypes>(c, [](auto a, auto b) {
    if constexpr (std::is_integral_v<decltype(b)>) { if (b == 0) return decltype(a)(0); }
    return decltype(a)(a / b);
  });
}
Status neg(KernelContext& c) { return unary_kernel<NumericTypes>(c, [](auto x) { return decltype(x)(-x); }); }
Status abs_(KernelContext& c) {
  return unary_kernel<NumericTypes>(c, [](auto x) { return x < decltype(x)(0) ? decltype(x)(-x) : x; });
}
Status exp_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::exp(x); }); }
Status log_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::log(x); }); }
Status sqrt_(KernelContext& c) { return unary_kernel<FloatTypes>(c, [](auto x) { return std::sqrt(x); }); }

}  // namespace

void register_elementwise_kernels(KernelTable& t) {
  t.add("", "Add", add);
  t.add("", "Sub", sub);
  t.add("", "Mul", mul);
  t.add("", "Div", div);
  t.add("", "Neg", neg);
  t.add("", "Abs", abs_);
  t.add("", "Exp", exp_);
  t.add("", "Log", log_);
  t.add("", "Sqrt", sqrt_);
}

}  // namespace kiln::cpu
