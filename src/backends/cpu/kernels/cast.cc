// CPU kernels of Cast and CastLike between all numeric types and bool, the float8 types,
// float4e2m1 and the packed int4/uint4/int2/uint2. String casts are rejected by the schema
// ("not supported").
#include <cmath>
#include <limits>

#include "core/float8.h"

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

// One value, exactly decoded to double, into a quantized type as ONNX's reference casts:
// float8 rounds to nearest even (saturating unless saturate=0), float8e8m0 by `round_mode`,
// float4e2m1 saturates, and the small integers truncate then wrap like numpy's astype.
uint8_t encode_quantized(DataType to, double v, bool saturate, E8M0Round mode) {
  switch (to) {
    case DataType::kFloat8E8M0: return encode_float8e8m0(static_cast<float>(v), saturate, mode);
    case DataType::kUInt4: case DataType::kInt4: case DataType::kUInt2: case DataType::kInt2: {
      if (!std::isfinite(v)) return 0;
      return encode_small_int(to, static_cast<int64_t>(std::fmod(std::trunc(v), 65536.0)));
    }
    default: return encode_float8(to, v, saturate);
  }
}

Expected<E8M0Round> round_mode(const Node& n) {
  const std::string m = n.attr_string("round_mode", "up");
  if (m == "up") return E8M0Round::kUp;
  if (m == "down") return E8M0Round::kDown;
  if (m == "nearest") return E8M0Round::kNearest;
  return err("round_mode must be 'up', 'down' or 'nearest', got '", m, "'");
}

// Casts touching a quantized type go through double, which holds every value of those
// types (and of the source types they are cast from) exactly, so nothing rounds twice.
Status cast_quantized(KernelContext& ctx, const Tensor& x, Tensor& y) {
  const bool saturate = ctx.node().attr_int("saturate", 1) != 0;
  auto mode = round_mode(ctx.node());
  if (!mode) return ctx.fail(mode.status().message());
  auto read = [&](int64_t i) { return x.get_as_double(i); };
  if (dtype_is_quantized(y.dtype())) {
    for (int64_t i = 0; i < x.numel(); ++i)
      store_bits(y.mutable_raw(), y.dtype(), i, encode_quantized(y.dtype(), read(i), saturate, *mode));
    return Status::ok();
  }
  Status s = visit_dtype(y.dtype(), AllTypes{}, [&](auto to_tag) {
    using To = decltype(to_tag);
    To* py = y.mutable_data<To>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = convert<To>(read(i));
  });
  return s.with_context(ctx.node().label() + ": ");
}

Status cast_to(KernelContext& ctx, DataType to) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  if (y.dtype() != to) return ctx.fail("output was allocated as ", y.describe(), ", expected ", dtype_name(to));
  if (dtype_is_quantized(x.dtype()) || dtype_is_quantized(to)) return cast_quantized(ctx, x, y);
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
