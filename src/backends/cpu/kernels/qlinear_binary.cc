// CPU kernels of ONNX Runtime's QLinearAdd and QLinearMul (com.microsoft), computed as MLAS
// computes them (float32 arithmetic, round half to even, saturate):
//   Add: c = (sa/sc) * a + (sb/sc) * b + (zc - (sa/sc) * za - (sb/sc) * zb)
//   Mul: c = (sa*sb/sc) * (a - za) * (b - zb) + zc
// so a model ONNX Runtime runs through its QDQ transformer gives the same integers.
#include <cmath>
#include <limits>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

template <class T>
T saturate(float v) {
  v = std::nearbyint(v);
  v = std::fmin(std::fmax(v, float(std::numeric_limits<T>::min())), float(std::numeric_limits<T>::max()));
  return static_cast<T>(v);
}

template <bool kMul>
Status qlinear_binary(KernelContext& ctx) {
  const Tensor &a = ctx.input(0), &b = ctx.input(3);
  for (size_t i : {1, 4, 6})
    if (ctx.input(i).numel() != 1) return ctx.fail("scale input ", i, " must be one value (per tensor)");
  for (size_t i : {2, 5, 7})
    if (ctx.has_input(i) && ctx.input(i).numel() != 1) return ctx.fail("zero point input ", i, " must be one value");
  auto zp = [&](size_t i) { return ctx.has_input(i) ? float(ctx.input(i).get_as_double(0)) : 0.f; };
  const float sa = float(ctx.input(1).get_as_double(0)), sb = float(ctx.input(4).get_as_double(0));
  const float sc = float(ctx.input(6).get_as_double(0));
  if (!(sc != 0) || !std::isfinite(sc)) return ctx.fail("C_scale is ", sc);
  const float za = zp(2), zb = zp(5), zc = zp(7);
  Tensor& c = ctx.output(0);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* pc = c.mutable_data<T>();
    if constexpr (kMul) {
      const float m = sa * sb / sc;
      for_each_broadcast<2>(c.dims(), {a.dims(), b.dims()}, [&](int64_t i, const std::array<int64_t, 2>& o) {
        pc[i] = saturate<T>(m * (float(pa[o[0]]) - za) * (float(pb[o[1]]) - zb) + zc);
      });
    } else {
      const float ra = sa / sc, rb = sb / sc, k = zc - ra * za - rb * zb;
      for_each_broadcast<2>(c.dims(), {a.dims(), b.dims()}, [&](int64_t i, const std::array<int64_t, 2>& o) {
        pc[i] = saturate<T>(ra * float(pa[o[0]]) + rb * float(pb[o[1]]) + k);
      });
    }
  };
  if (a.dtype() == DataType::kInt8) run(int8_t{});
  else if (a.dtype() == DataType::kUInt8) run(uint8_t{});
  else return ctx.fail("A must be int8 or uint8, got ", dtype_name(a.dtype()));
  return Status::ok();
}

}  // namespace

void register_qlinear_binary_kernels(KernelTable& t) {
  t.add("com.microsoft", "QLinearAdd", qlinear_binary<false>);
  t.add("com.microsoft", "QLinearMul", qlinear_binary<true>);
}

}  // namespace kiln::cpu
