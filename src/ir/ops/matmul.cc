// Op schemas of the matmul family: MatMul, Gemm, Einsum, Det and the integer/quantized
// MatMulInteger and QLinearMatMul.
#include "ir/ops/einsum_equation.h"
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

const std::initializer_list<DataType> kFloats = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                                 DataType::kBFloat16};
const std::initializer_list<DataType> kMatMulTypes = {
    DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16, DataType::kInt32,
    DataType::kInt64,   DataType::kUInt32,  DataType::kUInt64};
const std::initializer_list<DataType> kInt8s = {DataType::kInt8, DataType::kUInt8};

// numpy.matmul shape rule: 1-D operands are promoted (and the added dim dropped after),
// batch dims broadcast, inner dims must agree.
Expected<Shape> matmul_shape(const InferContext& ctx, const Shape& a, const Shape& b) {
  if (!a.rank_known() || !b.rank_known()) return Shape::unknown_rank();
  if (a.rank() == 0 || b.rank() == 0) return ctx.fail("MatMul operands must have rank >= 1");
  std::vector<Dim> ad = a.dims(), bd = b.dims();
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), Dim(1));
  if (b1) bd.push_back(Dim(1));
  const Dim& ka = ad.back();
  const Dim& kb = bd[bd.size() - 2];
  if (ka.is_static() && kb.is_static() && ka.value() != kb.value())
    return ctx.fail("inner dimensions differ: ", a.to_string(), " x ", b.to_string());
  Shape ab(std::vector<Dim>(ad.begin(), ad.end() - 2)), bb(std::vector<Dim>(bd.begin(), bd.end() - 2));
  auto batch = broadcast_shapes({ab, bb});
  if (!batch) return ctx.fail(batch.status().message());
  std::vector<Dim> out = batch->dims();
  if (!a1) out.push_back(ad[ad.size() - 2]);
  if (!b1) out.push_back(bd.back());
  return Shape(std::move(out));
}

Status infer_matmul(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kMatMulTypes));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 2));
  KILN_ASSIGN_OR_RETURN(Shape s, matmul_shape(ctx, ctx.input_shape(0), ctx.input_shape(1)));
  ctx.set_output(0, ctx.input_type(0), std::move(s));
  return Status::ok();
}

Status infer_gemm(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 3));
  const Shape& a = ctx.input_shape(0);
  const Shape& b = ctx.input_shape(1);
  Dim m, n;
  if (a.rank_known()) {
    if (a.rank() != 2) return ctx.fail("A must be 2-D, got ", a.to_string());
    m = a[ctx.node().attr_int("transA", 0) ? 1 : 0];
  }
  if (b.rank_known()) {
    if (b.rank() != 2) return ctx.fail("B must be 2-D, got ", b.to_string());
    n = b[ctx.node().attr_int("transB", 0) ? 0 : 1];
  }
  if (a.rank_known() && b.rank_known()) {
    Dim ka = a[ctx.node().attr_int("transA", 0) ? 0 : 1], kb = b[ctx.node().attr_int("transB", 0) ? 1 : 0];
    if (ka.is_static() && kb.is_static() && ka.value() != kb.value())
      return ctx.fail("inner dimensions differ: ", a.to_string(), " x ", b.to_string());
  }
  Shape y({m, n});
  if (ctx.has_input(2) && ctx.input_shape(2).rank_known()) {
    if (ctx.input_shape(2).rank() > 2) return ctx.fail("C must have rank <= 2");
    auto bs = broadcast_shapes({y, ctx.input_shape(2)});
    if (!bs) return ctx.fail("C ", ctx.input_shape(2).to_string(), " does not broadcast to ", y.to_string());
  }
  ctx.set_output(0, ctx.input_type(0), y);
  return Status::ok();
}

std::vector<int64_t> dims_or_unknown(const Shape& s) {
  std::vector<int64_t> d;
  for (const Dim& x : s.dims()) d.push_back(x.is_static() ? x.value() : -1);
  return d;
}

Status infer_einsum(InferContext& ctx) {
  std::vector<std::vector<int64_t>> dims;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.input_shape(i).rank_known()) {
      ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank());
      return Status::ok();
    }
    dims.push_back(dims_or_unknown(ctx.input_shape(i)));
  }
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, ctx.num_inputs()));
  auto spec = parse_einsum(ctx.node().attr_string("equation", ""), dims);
  if (!spec) return ctx.fail(spec.status().message());
  std::vector<Dim> out;
  for (int l : spec->output) {
    int64_t d = spec->sizes.at(l);
    out.push_back(d >= 0 ? Dim(d) : Dim::unknown());
  }
  ctx.set_output(0, ctx.input_type(0), Shape(std::move(out)));
  return Status::ok();
}

Status infer_det(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kFloats));
  const Shape& x = ctx.input_shape(0);
  if (!x.rank_known()) {
    ctx.set_output(0, ctx.input_type(0), x);
    return Status::ok();
  }
  if (x.rank() < 2) return ctx.fail("input must have rank >= 2, got ", x.to_string());
  const Dim &r = x[x.rank() - 2], &c = x[x.rank() - 1];
  if (r.is_static() && c.is_static() && r.value() != c.value())
    return ctx.fail("input matrices must be square, got ", x.to_string());
  ctx.set_output(0, ctx.input_type(0), Shape(std::vector<Dim>(x.dims().begin(), x.dims().end() - 2)));
  return Status::ok();
}

Status infer_matmul_integer(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kInt8s));
  KILN_RETURN_IF_ERROR(require_type(ctx, 1, kInt8s));
  KILN_ASSIGN_OR_RETURN(Shape s, matmul_shape(ctx, ctx.input_shape(0), ctx.input_shape(1)));
  ctx.set_output(0, DataType::kInt32, std::move(s));
  return Status::ok();
}

// QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp): y has y_zp's type.
Status infer_qlinear_matmul(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, kInt8s));
  KILN_RETURN_IF_ERROR(require_type(ctx, 3, kInt8s));
  KILN_RETURN_IF_ERROR(require_type(ctx, 7, kInt8s));
  KILN_ASSIGN_OR_RETURN(Shape s, matmul_shape(ctx, ctx.input_shape(0), ctx.input_shape(3)));
  ctx.set_output(0, ctx.input_type(7), std::move(s));
  return Status::ok();
}

OpSchema schema(const char* name, int since, int min_in, int max_in, InferFn infer,
                FusionKind kind = FusionKind::kAnchor) {
  OpSchema s;
  s.name = name;
  s.since_version = since;
  s.min_inputs = min_in;
  s.max_inputs = max_in;
  s.fusion_kind = kind;
  s.infer = std::move(infer);
  return s;
}

}  // namespace

void register_matmul_ops(OpRegistry& r) {
  r.add(schema("MatMul", 1, 2, 2, infer_matmul));
  r.add(schema("Gemm", 1, 2, 3, infer_gemm));
  r.add(schema("Einsum", 12, 1, -1, infer_einsum));
  r.add(schema("Det", 11, 1, 1, infer_det, FusionKind::kOpaque));
  r.add(schema("MatMulInteger", 10, 2, 4, infer_matmul_integer));
  r.add(schema("QLinearMatMul", 10, 8, 8, infer_qlinear_matmul));
}

}  // namespace kiln
