// Op schemas of the rnn family: RNN, GRU and LSTM (opset 7 form plus opset 14's layout).
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

// Gates per op: RNN 1, GRU 3 (z, r, h), LSTM 4 (i, o, f, c).
int64_t gate_count(const std::string& op) { return op == "LSTM" ? 4 : op == "GRU" ? 3 : 1; }

Status infer_rnn(InferContext& ctx) {
  const Node& n = ctx.node();
  const std::string dir = n.attr_string("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional")
    return ctx.fail("unknown direction '", dir, "'");
  const int64_t dirs = dir == "bidirectional" ? 2 : 1;
  const int64_t layout = n.attr_int("layout", 0);
  if (layout != 0 && layout != 1) return ctx.fail("layout must be 0 or 1, got ", layout);
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16}));
  KILN_RETURN_IF_ERROR(require_same_types(ctx, 0, 4));
  if (ctx.has_input(4)) KILN_RETURN_IF_ERROR(require_type(ctx, 4, {DataType::kInt32}));
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  const Shape& r = ctx.input_shape(2);
  if (x.rank_known() && x.rank() != 3) return ctx.fail("X must have rank 3, got ", x.to_string());
  if (w.rank_known() && w.rank() != 3) return ctx.fail("W must have rank 3, got ", w.to_string());
  if (r.rank_known() && r.rank() != 3) return ctx.fail("R must have rank 3, got ", r.to_string());
  Dim hidden = n.has_attr("hidden_size") ? Dim(n.attr_int("hidden_size", 0))
                                         : (r.rank_known() ? r[2] : Dim::unknown());
  if (hidden.is_static() && hidden.value() <= 0) return ctx.fail("hidden_size must be positive");
  if (hidden.is_static() && w.rank_known() && w[1].is_static() &&
      w[1].value() != gate_count(n.op_type) * hidden.value())
    return ctx.fail("W has ", w[1].value(), " rows, expected ", gate_count(n.op_type) * hidden.value());
  if (w.rank_known() && w[0].is_static() && w[0].value() != dirs)
    return ctx.fail("W has ", w[0].value(), " directions, expected ", dirs);
  Dim seq = Dim::unknown(), batch = Dim::unknown();
  if (x.rank_known()) { seq = x[layout == 0 ? 0 : 1]; batch = x[layout == 0 ? 1 : 0]; }
  DataType t = ctx.input_type(0);
  if (layout == 0) ctx.set_output(0, t, Shape({seq, Dim(dirs), batch, hidden}));
  else ctx.set_output(0, t, Shape({batch, seq, Dim(dirs), hidden}));
  Shape state = layout == 0 ? Shape({Dim(dirs), batch, hidden}) : Shape({batch, Dim(dirs), hidden});
  for (size_t i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, t, state);
  return Status::ok();
}

OpSchema rnn_schema(const char* name, int max_inputs, int max_outputs) {
  OpSchema s;
  s.name = name;
  s.since_version = 7;
  s.min_inputs = 3;
  s.max_inputs = max_inputs;
  s.min_outputs = 0;
  s.max_outputs = max_outputs;
  s.infer = infer_rnn;
  return s;
}

}  // namespace

void register_rnn_ops(OpRegistry& r) {
  r.add(rnn_schema("RNN", 6, 2));
  r.add(rnn_schema("GRU", 6, 2));
  r.add(rnn_schema("LSTM", 8, 3));
}

}  // namespace kiln
