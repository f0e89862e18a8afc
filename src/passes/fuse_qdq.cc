// fuse_qdq: explicit quantization. Folds the Q/DQ pairs that quantization tools write around a
// convolution or a matrix product (ONNX Runtime's quantize_static in QDQ format, NVIDIA ModelOpt,
// pytorch-quantization) into one integer layer, as TensorRT does: the layer reads the 8-bit
// input and weights, accumulates in int32 and writes the 8-bit output.
//
//   before:  %x  = DequantizeLinear(%xq, %sx, %zx)          (per-tensor activation)
//            %w  = DequantizeLinear(%wq, %sw, %zw, axis=0)  (constant weights, per channel)
//            [%b = DequantizeLinear(%bq, %sb, 0) | a constant float bias]
//            %c  = Conv(%x, %w, %b?)
//            [%c = Relu(%c)]
//            %yq = QuantizeLinear(%c, %sy, %zy)
//   after:   %yq = QLinearConv(%xq, %sx, %zx, %wq, %sw, %zw, %sy, %zy, %bq)   (Conv's attributes)
//            [then %yq = Max(%yq, %zy): exact, since Q is monotonic and Q(0) = %zy]
//   and the same for MatMul(DQ, DQ(constant)) -> QLinearMatMul (per-tensor %a, per-tensor or
//   per-column %b).
//   Q(Add|Mul(DQ(%aq), DQ(%bq)) [-> Relu]) -> com.microsoft QLinearAdd|QLinearMul(%aq, .., %bq, ..,
//   %sy, %zy) [then Max(%yq, %zy)], as ONNX Runtime fuses a ResNet residual (on backends with
//   those kernels: the CPU's and CUDA's).
//   Q(Concat(DQ(%a_1), ..., DQ(%a_n))) -> com.microsoft QLinearConcat(%sy, %zy, %a_1, %s_1, %z_1, ...)
//   {axis}: each input requantized to the output's scale (on backends with that kernel).
//   Q(op(DQ(%xq, %s, %z)), %s, %z) for op MaxPool/Reshape/Flatten/Transpose/Squeeze/Unsqueeze/
//   Identity (same scale and zero point both sides) -> op(%xq): the op runs on the 8-bit tensor.
//
// The int32 bias is the DQ's when its scale is %sx x %sw (float32 product, per channel), else
// a float bias is quantized to round(b / (%sx x %sw)). The DequantizeLinear nodes stay (another
// layer may read %x; eliminate_dead_nodes drops unread ones). Runs before fold_constants, which
// would otherwise turn the weights' DQ into float weights.
//
// Fires only for 8-bit integer Q/DQ (int8/uint8; no float8, no int4, no block_size), float32
// scales, constant scales and zero points, per-tensor scales on activations, and an
// intermediate Conv/MatMul (and Relu) output read only by the pattern. Must not fire on a
// per-channel activation scale, on weights that are not constant, on a bias whose scale is not
// %sx x %sw (after quantizing, |b / (sx sw)| < 2^31), or on an output that is also read as float.
// Pre: types and shapes inferred. Post: each QLinear node stands where the QuantizeLinear stood.
#include <cmath>

#include <optional>

#include "passes/pipeline.h"
#include "passes/rewrite/rewriter.h"

namespace kiln::passes {

namespace {

using namespace rewrite;

bool is_int8(DataType t) { return t == DataType::kInt8 || t == DataType::kUInt8; }

// A DequantizeLinear/QuantizeLinear node kiln folds: 8-bit data, constant float32 scale and
// zero point (or none), no block quantization.
bool plain_qdq(const Node& n, DataType data) {
  if (n.domain != "" || n.attr_int("block_size", 0) != 0 || n.inputs.size() < 2) return false;
  if (!is_int8(data)) return false;
  const Value* s = n.inputs[1];
  if (!s || !s->initializer || s->dtype != DataType::kFloat32) return false;
  const Value* z = n.inputs.size() > 2 ? n.inputs[2] : nullptr;
  return !z || (z->initializer && z->dtype == data);
}

// The DQ node producing v (the value itself is matched by any(): the DQ may have other readers).
const Node* dq_of(const Value& v) {
  const Node* n = v.producer;
  if (!n || n->op_type != "DequantizeLinear" || !n->inputs[0]) return nullptr;
  return plain_qdq(*n, n->inputs[0]->dtype) && v.dtype == DataType::kFloat32 ? n : nullptr;
}
bool per_tensor(const Value* scale) { return scale->initializer->numel() == 1; }

bool dq_activation(const Value& v) {
  const Node* n = dq_of(v);
  return n && per_tensor(n->inputs[1]) && (n->inputs.size() < 3 || !n->inputs[2] || n->inputs[2]->initializer->numel() == 1);
}
bool dq_constant(const Value& v) {
  const Node* n = dq_of(v);
  return n && n->inputs[0]->initializer;
}

// Inputs of the QLinear node for one DQ: data, scale, zero point (a zero of the data type when
// the DQ has none, as the spec defaults).
Expected<std::vector<Value*>> dq_inputs(const Value* v, const std::string& layer, Rewriter& rw) {
  const Node* n = v->producer;
  Value* zp = n->inputs.size() > 2 ? n->inputs[2] : nullptr;
  if (!zp) {
    const DataType t = n->inputs[0]->dtype;
    Tensor z = t == DataType::kInt8 ? Tensor::scalar<int8_t>(0) : Tensor::scalar<uint8_t>(0);
    KILN_ASSIGN_OR_RETURN(zp, rw.constant(layer + "/" + n->inputs[0]->name + "_zero_point", std::move(z)));
  }
  return std::vector<Value*>{n->inputs[0], n->inputs[1], zp};
}

// Inputs of a two-operand QLinear node (QLinearMatMul, QLinearAdd/Mul): a's and b's data,
// scale and zero point, then the Q root's scale and zero point; nullopt when a zero point cannot
// be made.
std::optional<std::vector<Value*>> two_operand_inputs(const Match& m, const Value* a, const Value* b, Rewriter& rw) {
  const std::string& name = m.root->outputs[0]->name;
  auto ai = dq_inputs(a, name, rw);
  auto bi = dq_inputs(b, name, rw);
  if (!ai || !bi) return std::nullopt;
  std::vector<Value*> in = *ai;
  in.insert(in.end(), bi->begin(), bi->end());
  in.push_back(m.root->inputs[1]);
  in.push_back(m.root->inputs[2]);
  return in;
}

// The Q root: 8-bit output, per-tensor scale, zero point given (its type is the output's).
bool plain_q(const Node& q) {
  if (q.inputs.size() < 3 || !q.inputs[2] || !q.outputs[0]) return false;
  return plain_qdq(q, q.outputs[0]->dtype) && per_tensor(q.inputs[1]) && q.inputs[2]->initializer->numel() == 1 &&
         q.inputs[0]->dtype == DataType::kFloat32;
}

std::vector<double> values(const Value* v) {
  const Tensor& t = *v->initializer;
  std::vector<double> out(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = t.get_as_double(i);
  return out;
}

// The int32 bias of QLinearConv for bias value b (a DQ of int32 or a float constant), or null
// when it does not fit (the rule declines).
Value* int32_bias(const Value* b, const Value* sx, const Value* sw, int64_t channels, const std::string& layer,
                  Rewriter& rw) {
  const float x_scale = float(sx->initializer->get_as_double(0));
  std::vector<double> ws = values(sw);
  auto scale = [&](int64_t c) { return x_scale * float(ws[ws.size() == 1 ? 0 : c]); };
  const Node* dq = b->producer;
  if (dq && dq->op_type == "DequantizeLinear") {
    Value* bq = dq->inputs[0];
    if (!bq->initializer || bq->dtype != DataType::kInt32 || bq->initializer->numel() != channels) return nullptr;
    if (dq->inputs.size() < 2 || !dq->inputs[1] || !dq->inputs[1]->initializer) return nullptr;
    if (dq->inputs.size() > 2 && dq->inputs[2]) {
      if (!dq->inputs[2]->initializer) return nullptr;  // a zero point computed at run time
      for (double z : values(dq->inputs[2])) if (z != 0) return nullptr;
    }
    std::vector<double> sb = values(dq->inputs[1]);
    for (int64_t c = 0; c < channels; ++c) {
      double want = scale(c), got = sb[sb.size() == 1 ? 0 : c];
      if (std::fabs(got - want) > 1e-6 * std::fabs(want)) return nullptr;
    }
    return bq;
  }
  if (!b->initializer || b->dtype != DataType::kFloat32 || b->initializer->numel() != channels) return nullptr;
  std::vector<int32_t> q(channels);
  std::vector<double> bf = values(b);
  for (int64_t c = 0; c < channels; ++c) {
    double r = std::nearbyint(bf[c] / double(scale(c)));
    if (!(std::fabs(r) < 2147483647.0)) return nullptr;
    q[c] = int32_t(r);
  }
  auto v = rw.constant(layer + "/" + b->name + "_int32", Tensor::from_vector<int32_t>({channels}, q));
  return v ? *v : nullptr;
}

// The QLinear node in the root's place, or, with a Relu between the layer and Q, the QLinear
// node followed by Max(yq, zy) in the root's place.
bool emit(const Match& m, Rewriter& rw, const std::string& op_type, std::vector<Value*> in,
          std::map<std::string, AttrValue> attrs, const std::string& domain = "") {
  if (!m.node("relu")) {
    rw.replace_root(op_type, domain, std::move(in), std::move(attrs));
    return true;
  }
  Value* yq = m.root->outputs[0];
  auto q = rw.insert(op_type, domain, std::move(in), {{yq->dtype, yq->shape}}, "int8");
  if (!q) return false;
  (*q)->attrs = std::move(attrs);
  rw.replace_root("Max", "", {(*q)->outputs[0], m.root->inputs[2]});
  return true;
}

bool conv(const Match& m, Rewriter& rw) {
  const Node* c = m.node("conv");
  const Value *x = m["x"], *w = m["w"];
  const Node* wdq = w->producer;
  const Value* sw = wdq->inputs[1];
  if (!plain_q(*m.root) || !w->shape.rank_known() || !w->shape[0].is_static()) return false;
  const int64_t channels = w->shape[0].value();
  // Weights per tensor, or per output channel along axis 0.
  if (!per_tensor(sw)) {
    int64_t axis = wdq->attr_int("axis", 1);
    if (axis < 0) axis += w->shape.rank();
    if (axis != 0 || sw->initializer->numel() != channels) return false;
  }
  if (wdq->inputs.size() > 2 && wdq->inputs[2] && wdq->inputs[2]->initializer->numel() != sw->initializer->numel())
    return false;
  Value* bias = nullptr;
  if (c->inputs.size() > 2 && c->inputs[2]) {
    bias = int32_bias(c->inputs[2], x->producer->inputs[1], sw, channels, m.root->outputs[0]->name, rw);
    if (!bias) return false;
  }
  auto xi = dq_inputs(x, m.root->outputs[0]->name, rw);
  auto wi = dq_inputs(w, m.root->outputs[0]->name, rw);
  if (!xi || !wi) return false;
  std::vector<Value*> in = *xi;
  in.insert(in.end(), wi->begin(), wi->end());
  in.push_back(m.root->inputs[1]);
  in.push_back(m.root->inputs[2]);
  if (bias) in.push_back(bias);
  return emit(m, rw, "QLinearConv", std::move(in), c->attrs);
}

bool matmul(const Match& m, Rewriter& rw) {
  const Value *a = m["x"], *b = m["w"];
  const Node* bdq = b->producer;
  if (!plain_q(*m.root) || !a->shape.rank_known() || a->shape.rank() < 2 || !b->shape.rank_known() || b->shape.rank() != 2)
    return false;
  const Value* sb = bdq->inputs[1];
  if (!per_tensor(sb)) {  // per column: axis 1 of the 2-D weights
    int64_t axis = bdq->attr_int("axis", 1);
    if (axis < 0) axis += 2;
    if (axis != 1 || !b->shape[1].is_static() || sb->initializer->numel() != b->shape[1].value()) return false;
  }
  auto in = two_operand_inputs(m, a, b, rw);
  if (!in) return false;
  return emit(m, rw, "QLinearMatMul", std::move(*in), {});
}

// Q(Add|Mul(DQ(a), DQ(b))) -> QLinearAdd|QLinearMul (com.microsoft), as ONNX Runtime's QDQ
// transformer runs a ResNet residual: both operands and the output 8-bit of one type, per tensor.
bool binary(const Match& m, Rewriter& rw) {
  const Node* op = m.node("binary");
  if (!plain_q(*m.root) || op->inputs.size() != 2 || !op->inputs[0] || !op->inputs[1]) return false;
  const Value *a = op->inputs[0], *b = op->inputs[1];
  if (!dq_activation(*a) || !dq_activation(*b)) return false;
  const DataType t = m.root->outputs[0]->dtype;
  if (a->producer->inputs[0]->dtype != t || b->producer->inputs[0]->dtype != t) return false;
  auto in = two_operand_inputs(m, a, b, rw);
  if (!in) return false;
  return emit(m, rw, op->op_type == "Add" ? "QLinearAdd" : "QLinearMul", std::move(*in), {}, "com.microsoft");
}

// Q(Concat(DQ(a_1), ..., DQ(a_n))) -> QLinearConcat(%sy, %zy, a_1, s_1, z_1, ...) (com.microsoft),
// as ONNX Runtime's QDQ transformer runs it: every input and the output 8-bit of one type, per
// tensor; each input keeps its own scale (the kernel requantizes it to the output's).
bool concat(const Match& m, Rewriter& rw) {
  const Node* cat = m.node("concat");
  if (!plain_q(*m.root) || cat->inputs.empty() || !cat->has_attr("axis")) return false;
  const DataType t = m.root->outputs[0]->dtype;
  for (const Value* x : cat->inputs)
    if (!x || !dq_activation(*x) || x->producer->inputs[0]->dtype != t) return false;
  std::vector<Value*> in = {m.root->inputs[1], m.root->inputs[2]};
  for (const Value* x : cat->inputs) {
    auto xi = dq_inputs(x, m.root->outputs[0]->name, rw);
    if (!xi) return false;  // (a zero point that cannot be made: out of memory)
    in.insert(in.end(), xi->begin(), xi->end());
  }
  return emit(m, rw, "QLinearConcat", std::move(in), {{"axis", cat->attrs.at("axis")}}, "com.microsoft");
}

// Ops that move or select values without arithmetic: Q(op(DQ(xq))) with the same scale and zero
// point on both sides is op(xq) exactly (for MaxPool because max commutes with the monotonic DQ).
const char* const kMoves[] = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity"};

bool same_values(const Value* a, const Value* b) {
  if (!a || !b || !a->initializer || !b->initializer || a->dtype != b->dtype) return false;
  return a->initializer->numel() == b->initializer->numel() && values(a) == values(b);
}

bool int8_move(const Match& m, Rewriter& rw) {
  Node* mv = m.node("move");
  const Value* x = mv->inputs.empty() ? nullptr : mv->inputs[0];
  if (!plain_q(*m.root) || !x || !dq_activation(*x)) return false;
  const Node* dq = x->producer;
  if (dq->inputs.size() < 3 || !same_values(dq->inputs[1], m.root->inputs[1]) || !same_values(dq->inputs[2], m.root->inputs[2]))
    return false;
  for (size_t i = 1; i < mv->inputs.size(); ++i)
    if (mv->inputs[i] && !mv->inputs[i]->initializer) return false;  // shapes, axes: constants only
  if (mv->outputs.size() > 1 && mv->outputs[1]) return false;      // MaxPool's Indices
  std::vector<Value*> in = mv->inputs;
  in[0] = dq->inputs[0];
  rw.replace_root(mv->op_type, mv->domain, std::move(in), mv->attrs);
  return true;
}

Pattern moves() {
  std::vector<Pattern> alternatives;
  for (const char* type : kMoves) alternatives.push_back(op(type).as("move"));
  return either(std::move(alternatives));
}

Pattern activation() { return any().as("x").where(dq_activation); }
Pattern weights() { return any().as("w").where(dq_constant); }
Pattern q(Pattern layer) { return op("QuantizeLinear", {std::move(layer), constant(), constant()}); }
Pattern conv_op() {
  return op("Conv", {activation(), weights(), any().optional()}).as("conv");
}
Pattern matmul_op() { return op("MatMul", {activation(), weights()}).as("conv"); }

const Rule kRules[] = {
    {"conv_relu", q(op("Relu", {conv_op()}).as("relu")), conv},
    {"conv", q(conv_op()), conv},
    {"matmul_relu", q(op("Relu", {matmul_op()}).as("relu")), matmul},
    {"matmul", q(matmul_op()), matmul},
    {"int8_move", q(moves()), int8_move},
};

Pattern binary_op() { return either({op("Add").as("binary"), op("Mul").as("binary")}); }
const Rule kBinaryRules[] = {
    {"binary_relu", q(op("Relu", {binary_op()}).as("relu")), binary},
    {"binary", q(binary_op()), binary},
};
const Rule kConcatRules[] = {{"concat", q(op("Concat").as("concat")), concat}};

}  // namespace

Status fuse_qdq(Graph& graph, PassContext& ctx) {
  KILN_ASSIGN_OR_RETURN(int fused, rewrite::apply(graph, ctx, "fuse_qdq", kRules));
  ctx.counters["fuse_qdq.fused"] += fused;
  // The com.microsoft ops only for a backend that runs them (the CPU's and CUDA's kernels):
  // elsewhere DQ -> Add -> Q stays as it is rather than fall back to the host.
  if (!ctx.has_kernel || (ctx.has_kernel("com.microsoft", "QLinearAdd") && ctx.has_kernel("com.microsoft", "QLinearMul"))) {
    KILN_ASSIGN_OR_RETURN(int binaries, rewrite::apply(graph, ctx, "fuse_qdq", kBinaryRules));
    ctx.counters["fuse_qdq.fused_elementwise"] += binaries;
  }
  if (!ctx.has_kernel || ctx.has_kernel("com.microsoft", "QLinearConcat")) {
    KILN_ASSIGN_OR_RETURN(int concats, rewrite::apply(graph, ctx, "fuse_qdq", kConcatRules));
    ctx.counters["fuse_qdq.fused_concat"] += concats;
  }
  return Status::ok();
}

}  // namespace kiln::passes
