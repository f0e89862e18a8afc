// CPU kernels of Cast and CastLike between all numeric types and bool. String casts are
// rejected by the schema ("not supported").
#include <cmath>
#include <limits>

#include "backends/cpu/kernels/elementwise_loops.h"

namespace kiln::cpu {

namespace {

// One element from `From` to `To`. Float to integer saturates (and maps NaN to 0) because an
// out-of-range conversion is undefined behaviour in C++; integer to integer wraps (C++20).
template <class To, class From>
To convert(From v) {
  using CF = compute_t<From>;
  using CT = compute_t<To>;
  CF x = static_cast<CF>(v);
  if constexpr (std::is_same_v<To, bool>) {
    return x != CF(0);
  } else if constexpr (is_float_v<To>) {
    return static_cast<To>(static_cast<CT>(x));
  } else if constexpr (is_float_v<From>) {
    double d = static_cast<double>(x);
    if (std::isnan(d)) return To(0);
    if (d <= double(std::numeric_limits<To>::lowest())) return std::numeric_limits<To>::lowest();
    if (d >= double(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return static_cast<To>(d);
  } else {
    return static_cast<To>(x);
  }
}

Status cast_to(KernelContext& ctx, DataType to) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  if (y.dtype() != to) return ctx.fail("output was allocated as ", y.describe(), ", expected ", dtype_name(to));
  Status inner;
  Status s = visit_dtype(x.dtype(), AllTypes{}, [&](auto from_tag) {
    using From = decltype(from_tag);
    const From* px = x.data<From>();
    inner = visit_dtype(to, AllTypes{}, [&](auto to_tag) {
      using To = decltype(to_tag);
      To* py = y.mutable_data<To>();
      for (int64_t i = 0; i < x.numel(); ++i) py[i] = convert<To>(px[i]);
    });
  });
  if (s) s = inner;
  return s.with_context(ctx.node().label() + ": ");
}

Status cast(KernelContext& ctx) {
  return cast_to(ctx, static_cast<DataType>(ctx.node().attr_int("to", 0)));
}
Status cast_like(KernelContext& ctx) { return cast_to(ctx, ctx.input(1).dtype()); }

}  // namespace

void register_cast_kernels(KernelTable& t) {
  t.add("", "Cast", cast);
  t.add("", "CastLike", cast_like);
}

}  // namespace kiln::cpu
