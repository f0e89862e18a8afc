// Op schemas of the control-flow family: If, Loop, Scan. Their bodies are subgraph attributes
// (see the comment on subgraphs in ir/graph.h); infer_graph has inferred a body before the node
// that holds it, so these functions read the body outputs' types and shapes. Loop and Scan
// outputs have data-dependent sizes (trip count, sequence length), and If's depend on the
// branch taken, so their kernels allocate outputs themselves. Only tensor-typed state is
// supported: sequence and optional values are rejected by the importer with a clear message.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Expected<const Graph*> body_attr(const InferContext& ctx, const char* key) {
  const Graph* g = ctx.node().attr_graph(key);
  if (!g) return ctx.fail("needs the subgraph attribute '", key, "'");
  return g;
}

// The most precise shape both may have: equal dims stay, differing ones become unknown.
Shape merge_shapes(const Shape& a, const Shape& b) {
  if (!a.rank_known() || !b.rank_known() || a.rank() != b.rank()) return Shape::unknown_rank();
  std::vector<Dim> dims;
  for (size_t k = 0; k < a.rank(); ++k) dims.push_back(a[k] == b[k] ? a[k] : Dim::unknown());
  return Shape(std::move(dims));
}

// A body's output: its type, else the fallback's (a body input left untyped by the model).
DataType type_or(DataType t, DataType fallback) { return t != DataType::kUndefined ? t : fallback; }

Status require_bool_scalar_input(const InferContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return Status::ok();
  KILN_RETURN_IF_ERROR(require_type(ctx, i, {DataType::kBool}));
  const Shape& s = ctx.input_shape(i);
  if (!s.is_static()) return Status::ok();
  int64_t numel = 1;
  for (int64_t d : s.static_dims()) numel *= d;
  if (numel != 1) return ctx.fail(what, " must hold exactly one element, got shape ", s.to_string());
  return Status::ok();
}

// If: both branches return one value per output; a value's type must agree between them.
Status infer_if(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_bool_scalar_input(ctx, 0, "the condition"));
  KILN_ASSIGN_OR_RETURN(const Graph* then_g, body_attr(ctx, "then_branch"));
  KILN_ASSIGN_OR_RETURN(const Graph* else_g, body_attr(ctx, "else_branch"));
  const size_t n = ctx.num_outputs();
  if (then_g->outputs.size() != n || else_g->outputs.size() != n)
    return ctx.fail("has ", n, " outputs but then_branch returns ", then_g->outputs.size(), " and else_branch ",
                    else_g->outputs.size());
  if (!then_g->inputs.empty() || !else_g->inputs.empty()) return ctx.fail("branches must not have inputs");
  for (size_t i = 0; i < n; ++i) {
    const Value* a = then_g->outputs[i];
    const Value* b = else_g->outputs[i];
    if (a->dtype != DataType::kUndefined && b->dtype != DataType::kUndefined && a->dtype != b->dtype)
      return ctx.fail("output ", i, " is ", dtype_name(a->dtype), " in then_branch but ", dtype_name(b->dtype),
                      " in else_branch");
    ctx.set_output(i, type_or(a->dtype, b->dtype), merge_shapes(a->shape, b->shape));
  }
  return Status::ok();
}

// Loop(M, cond, v_initial...) -> (v_final..., scan outputs...); the body maps
// (iteration, cond, v...) to (cond, v..., scan slices...).
Status infer_loop(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Graph* body, body_attr(ctx, "body"));
  if (ctx.num_inputs() < 2) return ctx.fail("needs the inputs M and cond (either may be empty)");
  if (ctx.has_input(0)) {
    KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kInt64}));
  }
  KILN_RETURN_IF_ERROR(require_bool_scalar_input(ctx, 1, "the condition"));
  const size_t carried = ctx.num_inputs() - 2;
  if (body->inputs.size() != carried + 2)
    return ctx.fail("body takes ", body->inputs.size(), " inputs; it needs 2 + ", carried, " (iteration, condition, ",
                    "loop-carried values)");
  if (body->outputs.size() != ctx.num_outputs() + 1)
    return ctx.fail("body returns ", body->outputs.size(), " values; the node needs 1 + ", ctx.num_outputs(),
                    " (condition, loop-carried values, scan outputs)");
  if (ctx.num_outputs() < carried)
    return ctx.fail("has ", ctx.num_outputs(), " outputs, fewer than its ", carried, " loop-carried values");
  for (size_t i = 0; i < carried; ++i) {
    if (!ctx.has_input(i + 2)) return ctx.fail("loop-carried input ", i + 2, " is missing");
    const Value* out = body->outputs[i + 1];
    const DataType in_t = ctx.input_type(i + 2);
    if (in_t != DataType::kUndefined && out->dtype != DataType::kUndefined && in_t != out->dtype)
      return ctx.fail("loop-carried value ", i, " enters as ", dtype_name(in_t), " but the body returns ",
                      dtype_name(out->dtype));
    // The value may change shape between iterations; keep what the start and the body agree on.
    ctx.set_output(i, type_or(out->dtype, in_t), merge_shapes(ctx.input_shape(i + 2), out->shape));
  }
  for (size_t k = carried; k < ctx.num_outputs(); ++k) {
    const Value* out = body->outputs[k + 1];
    Shape s = Shape::unknown_rank();
    if (out->shape.rank_known()) {
      std::vector<Dim> dims{Dim::unknown()};
      dims.insert(dims.end(), out->shape.dims().begin(), out->shape.dims().end());
      s = Shape(std::move(dims));
    }
    ctx.set_output(k, out->dtype, std::move(s));
  }
  return Status::ok();
}

// Scan, opset 9+: (state..., scan inputs...) -> (final state..., scan outputs...). Opset 8 has
// a leading optional sequence_lens input and a batch axis 0 on everything.
Status infer_scan(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Graph* body, body_attr(ctx, "body"));
  const Node& n = ctx.node();
  const bool batched = ctx.opset() < 9;
  if (batched && ctx.has_input(0)) return ctx.fail("the opset-8 sequence_lens input is not supported");
  const size_t first = batched ? 1 : 0;
  const int64_t num_scan = n.attr_int("num_scan_inputs", -1);
  const int64_t num_in = static_cast<int64_t>(ctx.num_inputs()) - static_cast<int64_t>(first);
  if (num_scan < 1 || num_scan > num_in)
    return ctx.fail("num_scan_inputs ", num_scan, " must be in [1, ", num_in, "]");
  const size_t states = static_cast<size_t>(num_in - num_scan), scans = static_cast<size_t>(num_scan);
  if (body->inputs.size() != states + scans)
    return ctx.fail("body takes ", body->inputs.size(), " inputs; the node gives ", states + scans);
  if (body->outputs.size() != ctx.num_outputs())
    return ctx.fail("body returns ", body->outputs.size(), " values; the node has ", ctx.num_outputs(), " outputs");
  if (ctx.num_outputs() < states)
    return ctx.fail("has ", ctx.num_outputs(), " outputs, fewer than its ", states, " state values");
  const size_t scan_outs = ctx.num_outputs() - states;
  const char* in_dirs = batched ? "directions" : "scan_input_directions";
  for (const auto& [key, len] : {std::pair<const char*, size_t>{in_dirs, scans}, {"scan_input_axes", scans},
                                 {"scan_output_directions", scan_outs}, {"scan_output_axes", scan_outs}}) {
    const auto v = n.attr_ints(key);
    if (!v.empty() && v.size() != len) return ctx.fail(key, " has ", v.size(), " entries; expected ", len);
    if (std::string(key).find("directions") != std::string::npos)
      for (int64_t d : v) if (d != 0 && d != 1) return ctx.fail(key, " holds ", d, "; directions are 0 or 1");
  }
  // Sequence length from the first scan input, when its shape is known.
  Dim seq = Dim::unknown();
  const Shape& s0 = ctx.input_shape(first + states);
  const auto in_axes = n.attr_ints("scan_input_axes");
  if (s0.rank_known()) {
    const int64_t r = static_cast<int64_t>(s0.rank()) - (batched ? 1 : 0);
    if (r < 1)
      return ctx.fail("scan input ", s0.to_string(), " has no ", batched ? "sequence axis after the batch axis" : "sequence axis");
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, in_axes.empty() ? 0 : in_axes[0], r));
    seq = s0[static_cast<size_t>(axis) + (batched ? 1 : 0)];
  }
  for (size_t i = 0; i < states; ++i)
    ctx.set_output(i, type_or(body->outputs[i]->dtype, ctx.input_type(first + i)), ctx.input_shape(first + i));
  const auto out_axes = n.attr_ints("scan_output_axes");
  for (size_t k = 0; k < scan_outs; ++k) {
    const Value* out = body->outputs[states + k];
    if (!out->shape.rank_known()) {
      ctx.set_output(states + k, out->dtype, Shape::unknown_rank());
      continue;
    }
    std::vector<Dim> dims = out->shape.dims();
    const int64_t r = static_cast<int64_t>(dims.size()) + 1;
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, out_axes.empty() ? 0 : out_axes[k], r));
    dims.insert(dims.begin() + axis, seq);
    if (batched) {
      const Shape& st = ctx.input_shape(first + states);
      dims.insert(dims.begin(), st.rank_known() && st.rank() > 0 ? st[0] : Dim::unknown());
    }
    ctx.set_output(states + k, out->dtype, Shape(std::move(dims)));
  }
  return Status::ok();
}

OpSchema schema(const char* name, int since, int min_in, InferFn infer) {
  return OpSchema::make(name, since, min_in, -1, std::move(infer)).outputs(1, -1);
}

}  // namespace

void register_control_flow_ops(OpRegistry& r) {
  OpSchema if_op = schema("If", 1, 1, infer_if);
  if_op.max_inputs = 1;
  r.add(std::move(if_op));
  r.add(schema("Loop", 1, 0, infer_loop));  // M and cond are optional but take their slots
  r.add(schema("Scan", 8, 0, infer_scan));  // opset 8's leading sequence_lens is optional
}

}  // namespace kiln
