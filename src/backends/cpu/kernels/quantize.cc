// CPU kernels of the quantize family (per tensor, per axis and blocked; integer, float8,
// float4 and packed int4/int2 data). Rounding is half-to-even (std::nearbyint under the
// default rounding mode), as numpy.rint in the ONNX reference; results saturate to the
// output type's range.
#include <cmath>
#include <limits>

#include "backends/cpu/kernel_table.h"
#include "core/float8.h"

namespace kiln::cpu {

namespace {

// Which scale/zero-point entry element i of x uses: 0 per tensor; its index on `axis` per
// axis; blocked, its own index with the `axis` coordinate divided by block_size.
struct QuantIndex {
  enum Mode { kTensor, kAxis, kBlocked } mode = kTensor;
  int64_t inner = 1, extent = 1, block = 1, scale_extent = 1;
  int64_t operator()(int64_t i) const {
    if (mode == kTensor) return 0;
    const int64_t a = (i / inner) % extent;
    if (mode == kAxis) return a;
    const int64_t outer = i / (inner * extent), in = i % inner;
    return (outer * scale_extent + a / block) * inner + in;
  }
};

Expected<QuantIndex> quant_index(const KernelContext& ctx, const Tensor& x, const Tensor& scale) {
  QuantIndex q;
  auto one = [](const Tensor& t) { return t.numel() == 1 && t.rank() <= 1; };  // scalar or [1]: per tensor
  if (ctx.has_input(2) && ctx.input(2).dims() != scale.dims() && !(one(ctx.input(2)) && one(scale)))
    return err("zero point ", ctx.input(2).describe(), " and scale ", scale.describe(), " differ in shape");
  const int64_t block = ctx.node().attr_int("block_size", 0);
  if (block <= 0 && scale.numel() == 1 && scale.rank() <= 1) return q;
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (axis < -rank || axis >= rank) return err("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  q.extent = x.dim(axis);
  for (int64_t d = axis + 1; d < rank; ++d) q.inner *= x.dim(d);
  if (block > 0) {
    if (scale.rank() != x.rank()) return err("blocked scale ", scale.describe(), " must have x's rank ", rank);
    for (int64_t d = 0; d < rank; ++d) {
      const int64_t want = d == axis ? (x.dim(d) + block - 1) / block : x.dim(d);
      if (scale.dim(d) != want)
        return err("scale ", scale.describe(), " does not fit x ", x.describe(), " with block_size ", block, " on axis ", axis);
    }
    q.mode = QuantIndex::kBlocked;
    q.block = block;
    q.scale_extent = scale.dim(axis);
    return q;
  }
  if (scale.rank() != 1) return err("scale must be a scalar or 1-D without block_size, got ", scale.describe());
  if (x.dim(axis) != scale.numel()) return err("scale has ", scale.numel(), " values but axis ", axis, " has ", x.dim(axis));
  q.mode = QuantIndex::kAxis;
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

bool is_float8(DataType t) {
  return t == DataType::kFloat8E4M3FN || t == DataType::kFloat8E4M3FNUZ || t == DataType::kFloat8E5M2 ||
         t == DataType::kFloat8E5M2FNUZ;
}

// One quantized value as the reference computes it: integers round half to even, add the
// zero point and clip to the type's range; float8 converts x / scale (saturating unless
// saturate=0; the zero point must be 0); float4e2m1 converts x / scale + zero point.
uint8_t quantize_bits(DataType t, double v, double z, bool saturate_float8) {
  if (is_float8(t)) return encode_float8(t, v, saturate_float8);
  if (t == DataType::kFloat4E2M1) return encode_float8(t, v + z, true);
  int64_t lo, hi;
  int_range(t, &lo, &hi);
  const double r = std::isnan(v) ? 0.0 : std::nearbyint(v) + z;
  return encode_small_int(t, static_cast<int64_t>(std::min<double>(std::max<double>(r, double(lo)), double(hi))));
}

Status quantize_linear(KernelContext& ctx) {
  const Tensor &x = ctx.input(0), &scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  auto q = quant_index(ctx, x, scale);
  if (!q) return ctx.fail(q.status().message());
  const bool in_float = x.dtype() == DataType::kFloat32 || x.dtype() == DataType::kFloat16 || x.dtype() == DataType::kBFloat16;
  const bool sat = ctx.node().attr_int("saturate", 1) != 0;
  Tensor& y = ctx.output(0);
  if (dtype_is_quantized(y.dtype())) {
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t k = (*q)(i);
      const double z = zp ? zp->get_as_double(k) : 0.0;
      const double v = scaled(x.get_as_double(i), scale.get_as_double(k), in_float);
      store_bits(y.mutable_raw(), y.dtype(), i, quantize_bits(y.dtype(), v, z, sat));
    }
    return Status::ok();
  }
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

// (x - zero point) * scale, in float like the reference (double for a double scale); float8
// and float4 inputs have no zero point to subtract (it must be 0).
Status dequantize_linear(KernelContext& ctx) {
  const Tensor &x = ctx.input(0), &scale = ctx.input(1);
  const bool use_zp = ctx.has_input(2) && !is_float8(x.dtype()) && x.dtype() != DataType::kFloat4E2M1;
  const Tensor* zp = use_zp ? &ctx.input(2) : nullptr;
  auto q = quant_index(ctx, x, scale);
  if (!q) return ctx.fail(q.status().message());
  const bool in_double = scale.dtype() == DataType::kFloat64;
  Tensor& y = ctx.output(0);
  Status st = visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t k = (*q)(i);
      const double z = zp ? zp->get_as_double(k) : 0.0;
      double v;
      if (in_double) v = (x.get_as_double(i) - z) * scale.get_as_double(k);
      else v = double((float(x.get_as_double(i)) - float(z)) * float(scale.get_as_double(k)));
      py[i] = static_cast<T>(static_cast<compute_t<T>>(v));
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
