#include "quant/fake_quantize.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/log.h"

namespace kiln::quant {

namespace {

// QuantizeLinear -> DequantizeLinear of `x` at `scale`, inserted at `at` in the node list;
// returns the dequantized value.
Expected<Value*> insert_qdq(Graph& g, Value* x, float scale, size_t at) {
  KILN_ASSIGN_OR_RETURN(Value * s, g.add_initializer(x->name + "_int8_scale", Tensor::scalar<float>(scale)));
  KILN_ASSIGN_OR_RETURN(Value * z, g.add_initializer(x->name + "_int8_zero", Tensor::scalar<int8_t>(0)));
  KILN_ASSIGN_OR_RETURN(Value * q, g.add_value(x->name + "_int8_q", DataType::kInt8, x->shape));
  KILN_ASSIGN_OR_RETURN(Value * dq, g.add_value(x->name + "_int8_dq", DataType::kFloat32, x->shape));
  auto make = [&](const char* op, Value* in, Value* out) {
    auto n = std::make_unique<Node>();
    n->name = x->name + (op[0] == 'Q' ? "_int8_quantize" : "_int8_dequantize");
    n->op_type = op;
    n->opset = 13;
    n->inputs = {in, s, z};
    n->outputs = {out};
    return n;
  };
  auto& nodes = g.mutable_nodes();
  auto qn = make("QuantizeLinear", x, q), dqn = make("DequantizeLinear", q, dq);
  q->producer = qn.get();
  dq->producer = dqn.get();
  nodes.insert(nodes.begin() + static_cast<std::ptrdiff_t>(at), std::move(dqn));
  nodes.insert(nodes.begin() + static_cast<std::ptrdiff_t>(at), std::move(qn));
  return dq;
}

// The weight's float32 copy quantized per output channel to [-127, 127] and back.
Tensor fake_quantized_weight(const Tensor& w, const WeightScales& ws) {
  Tensor out = w.clone();
  float* p = out.mutable_data<float>();
  int64_t inner = 1;
  for (size_t k = ws.axis + 1; k < w.rank(); ++k) inner *= w.dim(k);
  const int64_t channels = w.dim(ws.axis);
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float s = ws.scales[static_cast<size_t>((i / inner) % channels)];
    p[i] = s == 0 ? 0.f : std::clamp(std::nearbyint(p[i] / s), -127.f, 127.f) * s;
  }
  return out;
}

}  // namespace

Expected<FakeQuantized> fake_quantize(Graph& g, const std::map<std::string, float>& activation_scales,
                                      const std::vector<WeightScales>& weights,
                                      const std::function<bool(const Node&)>& keep_float) {
  FakeQuantized r;
  std::map<const Value*, Value*> dequantized, quantized_weight;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    Node* n = g.nodes()[i].get();
    if (!is_quantizable_layer(*n) || !n->has_input(0) || n->inputs[0]->dtype != DataType::kFloat32) continue;
    if (keep_float && keep_float(*n)) continue;
    auto ws = std::find_if(weights.begin(), weights.end(), [&](const WeightScales& w) { return w.layer == n->name; });
    auto as = activation_scales.find(n->inputs[0]->name);
    if (ws == weights.end() || as == activation_scales.end() || !(as->second > 0)) continue;
    Value* w = n->inputs[1];
    if (!w || !w->initializer || w->initializer->dtype() != DataType::kFloat32) continue;
    Value* x = n->inputs[0];
    if (x->initializer) continue;
    if (!dequantized.count(x)) {
      KILN_ASSIGN_OR_RETURN(dequantized[x], insert_qdq(g, x, as->second, i));
      i += 2;  // n moved two places on
    }
    if (!quantized_weight.count(w)) {
      KILN_ASSIGN_OR_RETURN(quantized_weight[w],
                            g.add_initializer(w->name + "_int8", fake_quantized_weight(*w->initializer, *ws)));
    }
    r.layers.push_back({n, x, dequantized[x], w, quantized_weight[w]});
    set_int8(r.layers.back(), true);
  }
  return r;
}

void set_int8(const QuantizedLayer& l, bool on) {
  l.node->inputs[0] = on ? l.x_dq : l.x;
  l.node->inputs[1] = on ? l.w_q : l.w;
}

void remove_unused_qdq(Graph& g) {
  std::set<const Value*> read(g.outputs.begin(), g.outputs.end());
  for (const auto& n : g.nodes())
    for (const Value* v : n->inputs) read.insert(v);
  auto& nodes = g.mutable_nodes();
  std::set<const Node*> dead;
  for (const auto& n : nodes)  // a pair fake_quantize made whose dequantized value nobody reads
    if (n->op_type == "DequantizeLinear" && n->outputs.size() == 1 && !read.count(n->outputs[0]) &&
        n->name.size() > 16 && n->name.compare(n->name.size() - 16, 16, "_int8_dequantize") == 0) {
      dead.insert(n.get());
      if (n->inputs[0]->producer) dead.insert(n->inputs[0]->producer);
    }
  std::vector<std::unique_ptr<Node>> kept;
  for (auto& n : nodes) {
    if (!dead.count(n.get())) { kept.push_back(std::move(n)); continue; }
    for (Value* o : n->outputs) if (o && o->producer == n.get()) o->producer = nullptr;
  }
  nodes = std::move(kept);
}

Expected<Int8Layers> apply_int8(Graph& g, const std::vector<std::pair<std::string, float>>& activation_scales,
                                bool simulate, const std::function<bool(const Node&)>& keep_float) {
  Int8Layers r;
  if (activation_scales.empty()) return r;
  r.weights = weight_scales(g);
  const std::string recorded = std::to_string(activation_scales.size()) +
                               " activation scales and the per-channel scales of " + std::to_string(r.weights.size()) +
                               " weights are recorded in the engine";
  if (!simulate) {
    log_warning("INT8: " + recorded + ", but kiln has no INT8 kernels yet: every layer computes in floating point "
                "(not an INT8 engine)");
    return r;
  }
  std::map<std::string, float> scales(activation_scales.begin(), activation_scales.end());
  KILN_ASSIGN_OR_RETURN(FakeQuantized fq, fake_quantize(g, scales, r.weights, keep_float));
  r.simulated = std::move(fq.layers);
  log_warning("INT8: " + recorded + "; no INT8 kernels yet: on the CPU backend " + std::to_string(r.simulated.size()) +
              " Conv/MatMul/Gemm layers simulate INT8 (quantize-dequantize of their input and per-channel weights, "
              "float32 arithmetic), every other layer computes in floating point");
  return r;
}

}  // namespace kiln::quant
