// CPU kernels of the quantize family. Rounding is half-to-even (std::nearbyint under the
// default rounding mode), as numpy.rint in the ONNX reference; results saturate to the
// output type's range.
#include <cmath>
#include <limits>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

// Which scale/zero-point entry element i of x uses: 0 per tensor, else its index on `axis`.
struct QuantIndex {
  int64_t inner = 1, extent = 1;
  bool per_axis = false;
  int64_t operator()(int64_t i) const { return per_axis ? (i / inner) % extent : 0; }
};

Expected<QuantIndex> quant_index(const KernelContext& ctx, const Tensor& x, const Tensor& scale) {
  QuantIndex q;
  if (ctx.has_input(2) && ctx.input(2).numel() != scale.numel())
    return err("zero point has ", ctx.input(2).numel(), " values but scale has ", scale.numel());
  if (scale.numel() == 1 && scale.rank() <= 1) return q;
  if (scale.rank() != 1) return err("scale must be a scalar or 1-D, got ", scale.describe());
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (axis < -rank || axis >= rank) return err("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  if (x.dim(axis) != scale.numel()) return err("scale has ", scale.numel(), " values but axis ", axis, " has ", x.dim(axis));
  q.per_axis = true;
  q.extent = x.dim(axis);
  for (int64_t d = axis + 1; d < rank; ++d) q.inner *= x.dim(d);
  return q;
}

template <class T>
T saturate(double v) {
  if (std::isnan(v)) v = 0;  // casting NaN to an integer is undefined
  return static_cast<T>(std::min<double>(std::max<double>(v, std::numeric_limits<T>::min()), std::numeric_limits<T>::max()));
}

// x / scale in float for float inputs (what the reference computes), in double otherwise.
double scaled(double x, double scale, bool in_float) {
  return in_float ? double(float(x) / float(scale)) : x / scale;
}

Status quantize_linear(KernelContext& ctx) {
  const Tensor &x = ctx.input(0), &scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  auto q = quant_index(ctx, x, scale);
  if (!q) return ctx.fail(q.status().message());
  const bool in_float = x.dtype() == DataType::kFloat32 || x.dtype() == DataType::kFloat16 || x.dtype() == DataType::kBFloat16;
  Tensor& y = ctx.output(0);
  Status st = visit_dtype(y.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T>) {
      T* py = y.mutable_data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t k = (*q)(i);
        const double z = zp ? zp->get_as_double(k) : 0.0;
        py[i] = saturate<T>(std::nearbyint(scaled(x.get_as_double(i), scale.get_as_double(k), in_float)) + z);
      }
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

Status dequantize_linear(KernelContext& ctx) {
  const Tensor &x = ctx.input(0), &scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  auto q = quant_index(ctx, x, scale);
  if (!q) return ctx.fail(q.status().message());
  Tensor& y = ctx.output(0);
  Status st = visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* py = y.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t k = (*q)(i);
      const C z = zp ? C(zp->get_as_double(k)) : C(0);
      py[i] = static_cast<T>((C(x.get_as_double(i)) - z) * C(scale.get_as_double(k)));
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

// uint8 quantization of x over [min(0, min x), max(0, max x)], computed in float like the spec.
Status dynamic_quantize_linear(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const float* px = x.data<float>();
  float lo = 0, hi = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    lo = std::min(lo, px[i]);
    hi = std::max(hi, px[i]);
  }
  const float scale = (hi - lo) / 255.0f;
  const float zp = scale == 0 ? 0.0f : std::nearbyint(std::min(255.0f, std::max(0.0f, 0.0f - lo / scale)));
  uint8_t* py = ctx.output(0).mutable_data<uint8_t>();
  for (int64_t i = 0; i < x.numel(); ++i)
    py[i] = scale == 0 ? uint8_t(zp) : saturate<uint8_t>(double(std::nearbyint(px[i] / scale)) + zp);
  ctx.output(1).mutable_data<float>()[0] = scale;
  ctx.output(2).mutable_data<uint8_t>()[0] = static_cast<uint8_t>(zp);
  return Status::ok();
}

}  // namespace

void register_quantize_kernels(KernelTable& t) {
  t.add("", "QuantizeLinear", quantize_linear);
  t.add("", "DequantizeLinear", dequantize_linear);
  t.add("", "DynamicQuantizeLinear", dynamic_quantize_linear);
}

}  // namespace kiln::cpu
