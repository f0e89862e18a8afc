// CPU kernels of the shape family, part 1: views (Reshape, Flatten, Squeeze, Unsqueeze,
// Identity, inference-mode Dropout) share the input's buffer; Transpose, Concat and Split move
// bytes without looking at the element type. Output shapes come from shape inference (the
// executor preallocated them), so these kernels only move data.
#include <cstring>
#include <random>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/shape_copy.h"
#include "ir/ops/shape_rules.h"

namespace kiln::cpu {

void register_shape_slice_kernels(KernelTable& t);
void register_shape_fill_kernels(KernelTable& t);
void register_center_crop_pad_kernels(KernelTable& t);

namespace {

// Output 0 as a view of input 0 with the dims inference gave output 0.
Status view_kernel(KernelContext& ctx) {
  if (!ctx.output(0).defined()) return ctx.fail("output shape was not inferred");
  auto v = ctx.input(0).reshaped(ctx.output(0).dims());
  if (!v) return ctx.fail(v.status().message());
  ctx.set_output(0, std::move(v).value());
  return Status::ok();
}

// Fills a preallocated mask with "kept" (true, or 1 of the input type before opset 10).
Status fill_mask_kept(KernelContext& ctx, Tensor& mask) {
  return visit_dtype(mask.dtype(), AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* p = mask.mutable_data<T>();
    for (int64_t i = 0; i < mask.numel(); ++i) p[i] = static_cast<T>(1);
  });
}

// Training-mode dropout: the conformance tests' random masks cannot be reproduced, so any
// seeded generator will do; ratio 0 stays exact (identity, mask all true).
Status dropout_train(KernelContext& ctx, double ratio) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  std::mt19937_64 rng(static_cast<uint64_t>(ctx.node().attr_int("seed", 0)));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double scale = ratio < 1 ? 1.0 / (1.0 - ratio) : 0.0;
  bool* mask = ctx.has_output(1) ? ctx.output(1).mutable_data<bool>() : nullptr;
  return visit_dtype(x.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* px = x.data<T>();
    T* py = y.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      bool keep = u(rng) >= ratio;
      py[i] = static_cast<T>(keep ? static_cast<C>(static_cast<double>(static_cast<C>(px[i])) * scale) : C(0));
      if (mask) mask[i] = keep;
    }
  });
}

Status dropout(KernelContext& ctx) {
  double ratio = ctx.node().attr_float("ratio", 0.5f);
  bool training = false;
  if (ctx.opset() >= 12) {
    if (ctx.has_input(1) && ctx.input(1).numel() != 1) return ctx.fail("ratio must be a scalar");
    if (ctx.has_input(2) && ctx.input(2).numel() != 1) return ctx.fail("training_mode must be a scalar");
    ratio = ctx.has_input(1) ? ctx.input(1).get_as_double(0) : 0.5;
    training = ctx.has_input(2) && ctx.input(2).get_as_int64(0) != 0;
  }  // before opset 12 kiln always runs inference, ignoring opset 6's is_test like onnxruntime

  if (ratio < 0 || ratio > 1) return ctx.fail("ratio ", ratio, " is outside [0, 1]");
  if (training && ratio > 0) {
    if (ctx.has_output(1) && ctx.output(1).dtype() != DataType::kBool) return ctx.fail("training mask must be bool");
    return dropout_train(ctx, ratio);
  }
  if (ctx.has_output(1)) KILN_RETURN_IF_ERROR(fill_mask_kept(ctx, ctx.output(1)));
  ctx.set_output(0, ctx.input(0));
  return Status::ok();
}

Status transpose(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  std::vector<int64_t> perm = ctx.node().attr_ints("perm");
  if (!ctx.node().has_attr("perm"))
    for (size_t i = x.rank(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  std::vector<int64_t> in_strides = contiguous_strides(x.dims()), strides;
  for (int64_t p : perm) strides.push_back(in_strides[p]);
  strided_copy(x.raw(), 0, strides, y.mutable_raw(), y.dims(), dtype_size(x.dtype()));
  return Status::ok();
}

// Bytes of one slab below `axis` (the product of the dims after it, times the element size).
size_t inner_bytes(const Tensor& t, size_t axis) {
  size_t n = dtype_size(t.dtype());
  for (size_t d = axis + 1; d < t.rank(); ++d) n *= static_cast<size_t>(t.dim(d));
  return n;
}

int64_t outer_count(const Tensor& t, size_t axis) {
  int64_t n = 1;
  for (size_t d = 0; d < axis; ++d) n *= t.dim(d);
  return n;
}

Status concat(KernelContext& ctx) {
  Tensor& y = ctx.output(0);
  if (!y.defined()) return ctx.fail("output shape was not inferred");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 0), y.rank()));
  std::byte* dst = y.mutable_raw();
  const int64_t outer = outer_count(y, axis);
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t k = 0; k < ctx.num_inputs(); ++k) {
      const Tensor& x = ctx.input(k);
      const size_t bytes = inner_bytes(x, axis) * static_cast<size_t>(x.dim(axis));
      if (bytes) std::memcpy(dst, x.raw() + o * bytes, bytes);
      dst += bytes;
    }
  }
  return Status::ok();
}

Status split(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 0), x.rank()));
  for (size_t k = 0; k < ctx.num_outputs(); ++k)  // an omitted output's extent is not known here
    if (!ctx.has_output(k) || !ctx.output(k).defined()) return ctx.fail("omitted Split outputs are not supported");
  const std::byte* src = x.raw();
  const int64_t outer = outer_count(x, axis);
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t k = 0; k < ctx.num_outputs(); ++k) {
      Tensor& y = ctx.output(k);
      const size_t bytes = inner_bytes(y, axis) * static_cast<size_t>(y.dim(axis));
      if (bytes) std::memcpy(y.mutable_raw() + o * bytes, src, bytes);
      src += bytes;
    }
  }
  return Status::ok();
}

}  // namespace

void register_shape_kernels(KernelTable& t) {
  register_center_crop_pad_kernels(t);
  t.add("", "Reshape", view_kernel);
  t.add("", "Flatten", view_kernel);
  t.add("", "Squeeze", view_kernel);
  t.add("", "Unsqueeze", view_kernel);
  t.add("", "Identity", view_kernel);
  t.add("", "Dropout", dropout);
  t.add("", "Transpose", transpose);
  t.add("", "Concat", concat);
  t.add("", "Split", split);
  register_shape_slice_kernels(t);
  register_shape_fill_kernels(t);
}

}  // namespace kiln::cpu
