// CPU kernels of the shape family, part 3: Shape, Size, ConstantOfShape, Range, EyeLike.
#include <algorithm>
#include <cstring>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

Status shape(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  int64_t start = ctx.node().attr_int("start", 0);
  if (start < 0) start += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  int64_t* p = y.mutable_data<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) p[i] = x.dim(start + i);
  return Status::ok();
}

Status size(KernelContext& ctx) {
  ctx.output(0).mutable_data<int64_t>()[0] = ctx.input(0).numel();
  return Status::ok();
}

Status constant_of_shape(KernelContext& ctx) {
  Tensor& y = ctx.output(0);
  const Tensor* v = ctx.node().attr_tensor("value");
  if (!v) return Status::ok();  // default: float zeros, which the output already holds
  const size_t esize = dtype_size(y.dtype());
  std::byte* p = y.mutable_raw();
  for (int64_t i = 0; i < y.numel(); ++i) std::memcpy(p + i * esize, v->raw(), esize);
  return Status::ok();
}

Status range(KernelContext& ctx) {
  Tensor& y = ctx.output(0);
  return visit_dtype(y.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    // Floats in double, like numpy.arange on Python floats (the ONNX reference).
    using C = std::conditional_t<std::is_integral_v<compute_t<T>>, compute_t<T>, double>;
    const C start = static_cast<C>(static_cast<compute_t<T>>(ctx.input(0).data<T>()[0]));
    const C delta = static_cast<C>(static_cast<compute_t<T>>(ctx.input(2).data<T>()[0]));
    T* p = y.mutable_data<T>();
    // start + i * delta (not repeated addition), like numpy.arange, so float error cannot grow.
    for (int64_t i = 0; i < y.numel(); ++i)
      p[i] = static_cast<T>(static_cast<compute_t<T>>(start + static_cast<C>(i) * delta));
  });
}

Status eye_like(KernelContext& ctx) {
  Tensor& y = ctx.output(0);
  if (!y.defined() || y.rank() != 2) return ctx.fail("output type ", dtype_name(y.dtype()), " is not supported");
  const int64_t k = ctx.node().attr_int("k", 0), rows = y.dim(0), cols = y.dim(1);
  return visit_dtype(y.dtype(), AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* p = y.mutable_data<T>();
    for (int64_t r = 0; r < rows; ++r) {
      int64_t c = r + k;
      if (c >= 0 && c < cols) p[r * cols + c] = static_cast<T>(1);
    }
  });
}

}  // namespace

void register_shape_fill_kernels(KernelTable& t) {
  t.add("", "Shape", shape);
  t.add("", "Size", size);
  t.add("", "ConstantOfShape", constant_of_shape);
  t.add("", "Range", range);
  t.add("", "EyeLike", eye_like);
}

}  // namespace kiln::cpu
