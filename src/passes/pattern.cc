#include "passes/pattern.h"

namespace kiln::passes {

namespace {

bool constant_rank_at_most(const Value* v, size_t r) { return v && v->initializer && v->initializer->dims().size() <= r; }

bool is(const Node* p, const char* op) { return p->domain.empty() && p->op_type == op; }

}  // namespace

// Each step names the input whose dim i the node's output keeps; a binary op with no constant
// side keeps it when both sides do (equal dims broadcast to themselves).
bool keeps_leading_dims(const Value* x, const Value* y, size_t i, int depth) {
  if (x == y) return true;
  if (!x || depth > 24 || !x->shape.rank_known() || i + 1 >= x->shape.rank()) return false;
  const Node* p = x->producer;
  if (!p) return false;
  auto same_rank = [&](const Value* v) { return v && v->shape.rank_known() && v->shape.rank() == x->shape.rank(); };
  auto via = [&](const Value* v) { return same_rank(v) && keeps_leading_dims(v, y, i, depth + 1); };
  const size_t n = p->inputs.size();
  if ((is(p, "MatMul") || (p->domain == "kiln" && p->op_type == "MatMulBias")) && n >= 2 && p->inputs[1] &&
      p->inputs[1]->initializer && p->inputs[1]->initializer->dims().size() == 2)
    return via(p->inputs[0]);  // a Linear layer: [.., K] x [K, N] keeps the leading dims
  if ((is(p, "Add") || is(p, "Sub") || is(p, "Mul") || is(p, "Div")) && n == 2) {
    if (constant_rank_at_most(p->inputs[1], 1)) return via(p->inputs[0]);
    if (constant_rank_at_most(p->inputs[0], 1)) return via(p->inputs[1]);
    return via(p->inputs[0]) && via(p->inputs[1]);
  }
  for (const char* op : {"LayerNormalization", "Identity", "Relu", "Gelu", "Erf", "Tanh", "Sigmoid", "Softmax", "Cast"})
    if (is(p, op)) return n >= 1 && via(p->inputs[0]);
  // Attention, 3-D form: Y is [batch, q_seq, heads * v_head] of Q's [batch, q_seq, ..].
  if (is(p, "Attention") && n >= 3 && p->outputs[0] == x && p->inputs[0] && p->inputs[0]->shape.rank_known() &&
      p->inputs[0]->shape.rank() == 3 && x->shape.rank() == 3)
    return via(p->inputs[0]);
  // kiln.PackedAttention: Y [B, S, H*D] of QKV [B, S, 3*H*D].
  if (p->domain == "kiln" && p->op_type == "PackedAttention" && n >= 1 && p->outputs[0] == x && same_rank(p->inputs[0]))
    return via(p->inputs[0]);
  // Reshape whose constant target copies dim i (0 with allowzero = 0) from an input of the same rank.
  if (is(p, "Reshape") && n == 2 && p->inputs[1] && p->inputs[1]->initializer && p->attr_int("allowzero", 0) == 0) {
    const Tensor& t = *p->inputs[1]->initializer;
    if (t.numel() != int64_t(x->shape.rank())) return false;
    for (size_t j = 0; j <= i; ++j)
      if (t.get_as_double(int64_t(j)) != 0) return false;  // the dims before i must be copied too
    return via(p->inputs[0]);
  }
  return false;
}

// Equal dims proven one by one: known and equal, or dim i of x carried from r (rank - 1 excluded).
bool same_shape_by_construction(const Value* x, const Value* r) {
  const Shape &a = x->shape, &b = r->shape;
  if (!a.rank_known() || !b.rank_known() || a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); ++i)
    if (!same_dim(a[i], b[i]) && !keeps_leading_dims(x, r, i)) return false;
  return true;
}

}  // namespace kiln::passes
