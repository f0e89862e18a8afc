// Op schemas of the random family: RandomUniform, RandomNormal (shape and dtype attributes),
// RandomUniformLike, RandomNormalLike (the input's shape; dtype attribute or the input's type)
// and Bernoulli (probabilities in, 0/1 draws out in dtype or the input's type). The values come
// from kiln's own generator (see kernels/random.cc); fold_constants never folds these ops.
#include <cmath>

#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

const std::initializer_list<DataType> kFloats = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                                 DataType::kBFloat16};

// The output type: attribute `dtype` if set, else `fallback`; must be one of `allowed`.
Expected<DataType> output_type(const InferContext& ctx, DataType fallback, std::initializer_list<DataType> allowed) {
  DataType t = fallback;
  if (ctx.node().has_attr("dtype")) {
    const int64_t code = ctx.node().attr_int("dtype", 1);
    if (!dtype_code_known(static_cast<int32_t>(code))) return ctx.fail("attribute dtype ", code, " is not a type");
    t = static_cast<DataType>(code);
  }
  if (t == DataType::kUndefined) return t;  // input type unknown at import time
  for (DataType a : allowed)
    if (a == t) return t;
  return ctx.fail("output type ", dtype_name(t), " is not one ", ctx.node().op_type, " produces");
}

Status check_seed(const InferContext& ctx) {
  const float seed = ctx.node().attr_float("seed", 0.0f);
  if (std::isnan(seed) || std::isinf(seed)) return ctx.fail("seed must be finite, got ", seed);
  return Status::ok();
}

// RandomUniform / RandomNormal: no inputs, shape from the attribute.
Status infer_random(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_seed(ctx));
  if (!ctx.node().has_attr("shape")) return ctx.fail("needs the attribute 'shape'");
  std::vector<Dim> dims;
  for (int64_t d : ctx.node().attr_ints("shape")) {
    if (d < 0) return ctx.fail("attribute shape holds ", d, "; dims must be nonnegative");
    dims.emplace_back(d);
  }
  KILN_ASSIGN_OR_RETURN(DataType t, output_type(ctx, DataType::kFloat32, kFloats));
  ctx.set_output(0, t, Shape(std::move(dims)));
  return Status::ok();
}

// RandomUniformLike / RandomNormalLike: the input's shape; its type unless dtype is set.
Status infer_random_like(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_seed(ctx));
  KILN_ASSIGN_OR_RETURN(DataType t, output_type(ctx, ctx.input_type(0), kFloats));
  ctx.set_output(0, t, ctx.input_shape(0));
  return Status::ok();
}

Status infer_bernoulli(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_seed(ctx));
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  KILN_ASSIGN_OR_RETURN(
      DataType t, output_type(ctx, ctx.input_type(0),
                              {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16,
                               DataType::kInt8, DataType::kInt16, DataType::kInt32, DataType::kInt64,
                               DataType::kUInt8, DataType::kUInt16, DataType::kUInt32, DataType::kUInt64,
                               DataType::kBool}));
  ctx.set_output(0, t, ctx.input_shape(0));
  return Status::ok();
}

}  // namespace

void register_random_ops(OpRegistry& r) {
  r.add(OpSchema::make("RandomUniform", 1, 0, 0, infer_random));
  r.add(OpSchema::make("RandomNormal", 1, 0, 0, infer_random));
  r.add(OpSchema::make("RandomUniformLike", 1, 1, 1, infer_random_like));
  r.add(OpSchema::make("RandomNormalLike", 1, 1, 1, infer_random_like));
  r.add(OpSchema::make("Bernoulli", 15, 1, 1, infer_bernoulli));
}

}  // namespace kiln
