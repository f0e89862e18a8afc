#include "ir/ops/shape_rules.h"

#include <algorithm>

namespace kiln {

Expected<Shape> broadcast_shapes(const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const Shape& s : shapes) {
    if (!s.rank_known()) return Shape::unknown_rank();
    rank = std::max(rank, s.rank());
  }
  std::vector<Dim> out(rank, Dim(1));
  for (size_t k = 0; k < rank; ++k) {
    bool have = false;
    Dim res(1);
    for (const Shape& s : shapes) {
      if (k + s.rank() < rank) continue;
      const Dim& d = s[k + s.rank() - rank];
      if (d.is_static() && d.value() == 1) continue;
      if (!have) { res = d; have = true; continue; }
      if (d.is_static() && res.is_static() && d.value() != res.value())
        return err("cannot broadcast shapes: dimension ", d.value(), " vs ", res.value());
      if (res.is_static()) continue;        // a static dim wins over a symbolic one
      if (d.is_static() || d != res) res = d.is_static() ? d : Dim::unknown();
    }
    out[k] = res;
  }
  return Shape(std::move(out));
}

Expected<std::vector<int64_t>> broadcast_dims(const std::vector<std::vector<int64_t>>& dims) {
  size_t rank = 0;
  for (const auto& d : dims) rank = std::max(rank, d.size());
  std::vector<int64_t> out(rank, 1);
  for (const auto& d : dims) {
    for (size_t k = 0; k < d.size(); ++k) {
      int64_t& o = out[rank - d.size() + k];
      int64_t v = d[k];
      if (v == 1) continue;
      if (o != 1 && o != v)
        return err("cannot broadcast shapes ", dims_to_string(dims[0]), " and ", dims_to_string(d));
      o = v;
    }
  }
  return out;
}

Expected<int64_t> normalize_axis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    return err("axis ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

Expected<int64_t> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank) {
  auto a = normalize_axis(axis, rank);
  if (!a) return ctx.fail(a.status().message());
  return a;
}

Status infer_same_as_input0(InferContext& ctx) {
  ctx.set_output(0, ctx.input_type(0), ctx.input_shape(0));
  return Status::ok();
}

static Expected<Shape> broadcast_inputs(const InferContext& ctx) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i)) shapes.push_back(ctx.input_shape(i));
  auto s = broadcast_shapes(shapes);
  if (!s) return ctx.fail(s.status().message());
  return s;
}

Status infer_broadcast(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_inputs(ctx));
  ctx.set_output(0, ctx.input_type(0), std::move(s));
  return Status::ok();
}

Status infer_broadcast_bool(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Shape s, broadcast_inputs(ctx));
  ctx.set_output(0, DataType::kBool, std::move(s));
  return Status::ok();
}

Status require_same_types(const InferContext& ctx, size_t first, size_t last) {
  for (size_t i = first + 1; i < last && i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    DataType a = ctx.input_type(first), b = ctx.input_type(i);
    if (a != DataType::kUndefined && b != DataType::kUndefined && a != b)
      return ctx.fail("input ", i, " has type ", dtype_name(b), " but input ", first, " has ", dtype_name(a));
  }
  return Status::ok();
}

Status require_type(const InferContext& ctx, size_t i, std::initializer_list<DataType> allowed) {
  if (!ctx.has_input(i)) return Status::ok();
  DataType t = ctx.input_type(i);
  if (t == DataType::kUndefined) return Status::ok();
  for (DataType a : allowed) if (a == t) return Status::ok();
  return ctx.fail("input ", i, " has unsupported type ", dtype_name(t));
}

Expected<std::vector<int64_t>> input_ints(const InferContext& ctx, size_t i) {
  const Tensor* t = ctx.input_value(i);
  if (!t) return ctx.fail("input ", i, " is not a known constant");
  auto v = t->to_int64_vector();
  if (!v) return ctx.fail("input ", i, ": ", v.status().message());
  return v;
}

void pass_dims_value(InferContext& ctx) {
  const Shape& out = ctx.output(0).shape;
  if (!out.rank_known() || out.rank() > 1 || !dtype_is_signed_int(ctx.output(0).dtype)) return;
  if (auto v = ctx.input_dims_value(0)) ctx.set_output_dims_value(0, std::move(*v));
}

// Element i of a shape tensor's elements, a one-element tensor broadcasting to every i.
static const Dim& element(const std::vector<Dim>& v, size_t i) { return v[v.size() == 1 ? 0 : i]; }

void binary_dims_value(InferContext& ctx, char op) {
  auto a = ctx.input_dims_value(0), b = ctx.input_dims_value(1);
  if (!a || !b || !dtype_is_signed_int(ctx.output(0).dtype)) return;
  if (a->size() != b->size() && a->size() != 1 && b->size() != 1) return;
  std::vector<Dim> v;
  for (size_t i = 0; i < std::max(a->size(), b->size()); ++i) {
    const Dim &x = element(*a, i), &y = element(*b, i);
    v.push_back(op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : exact_div(x, y));
  }
  ctx.set_output_dims_value(0, std::move(v));
}

// A dim that is a size: a number >= 0 or a positive multiple of a symbol.
static bool is_size(const Dim& d) { return (d.is_static() && d.value() >= 0) || (d.is_symbolic() && d.coef() > 0); }

void equal_dims_value(InferContext& ctx) {
  auto a = ctx.input_dims_value(0), b = ctx.input_dims_value(1);
  if (!a || !b || (a->size() != b->size() && a->size() != 1 && b->size() != 1)) return;
  std::vector<Dim> v;
  for (size_t i = 0; i < std::max(a->size(), b->size()); ++i) {
    const Dim &x = element(*a, i), &y = element(*b, i);
    if (x.is_static() && y.is_static()) v.push_back(Dim::integer(x.value() == y.value()));
    else if (x.is_known() && x == y) v.push_back(Dim::integer(1));
    else if ((is_size(x) && y.is_static() && y.value() < 0) || (is_size(y) && x.is_static() && x.value() < 0))
      v.push_back(Dim::integer(0));
    else v.push_back(Dim::unknown());
  }
  ctx.set_output_dims_value(0, std::move(v));
}

void where_dims_value(InferContext& ctx) {
  auto c = ctx.input_dims_value(0), x = ctx.input_dims_value(1), y = ctx.input_dims_value(2);
  if (!c || !x || !y || !dtype_is_signed_int(ctx.output(0).dtype)) return;
  const size_t n = std::max({c->size(), x->size(), y->size()});
  for (size_t s : {c->size(), x->size(), y->size()}) if (s != n && s != 1) return;
  std::vector<Dim> v;
  for (size_t i = 0; i < n; ++i) {
    const Dim& k = element(*c, i);
    v.push_back(!k.is_static() ? Dim::unknown() : k.value() ? element(*x, i) : element(*y, i));
  }
  ctx.set_output_dims_value(0, std::move(v));
}

std::optional<std::vector<Dim>> size_dims_value(const InferContext& ctx, size_t i) {
  auto v = ctx.input_dims_value(i);
  if (!v) return std::nullopt;
  for (const Dim& d : *v) if (!is_size(d)) return std::nullopt;
  return v;
}

}  // namespace kiln
