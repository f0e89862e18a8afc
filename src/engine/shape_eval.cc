#include "engine/shape_eval.h"

#include <algorithm>
#include <optional>

#include "backends/cpu/executor.h"
#include "ir/op_registry.h"

namespace kiln::engine {

namespace {
constexpr int64_t kMaxHostValueElements = 1024;  // fold only shape-sized tensors

bool is_random(const Node& n) { return n.op_type.rfind("Random", 0) == 0 || n.op_type == "Bernoulli"; }

// Shape and Size of a value whose dims are known but whose data is not (an activation): their
// values come from the dims alone.
std::optional<Tensor> shape_value(const Node& n, const std::map<const Value*, std::vector<int64_t>>& dims) {
  if (!n.domain.empty() || n.inputs.empty() || !n.inputs[0] || (n.op_type != "Shape" && n.op_type != "Size"))
    return std::nullopt;
  auto it = dims.find(n.inputs[0]);
  if (it == dims.end()) return std::nullopt;
  const auto& d = it->second;
  if (n.op_type == "Size") {
    int64_t p = 1;
    for (int64_t x : d) p *= x;
    return Tensor::scalar<int64_t>(p);
  }
  int64_t rank = static_cast<int64_t>(d.size());
  auto clamp = [rank](int64_t x) { return std::clamp(x < 0 ? x + rank : x, int64_t(0), rank); };
  int64_t start = clamp(n.attr_int("start", 0)), end = clamp(n.attr_int("end", rank));
  std::vector<int64_t> v(d.begin() + start, d.begin() + std::max(start, end));
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
}
}  // namespace

Expected<ValueShapes> evaluate_shapes(const Graph& graph, const std::map<std::string, std::vector<int64_t>>& input_dims) {
  ValueShapes r;
  for (const Value* in : graph.inputs) {
    auto it = input_dims.find(in->name);
    if (it == input_dims.end()) return err("no shape given for input '", in->name, "'");
    r.dims[in] = it->second;
  }
  for (const Value* out : graph.outputs)  // constant outputs (e.g. a folded Constant)
    if (out->initializer) r.dims[out] = out->initializer->dims();
  for (const auto& np : graph.nodes()) {
    const Node& n = *np;
    std::vector<InferContext::Input> ins;
    std::vector<const Tensor*> vals;
    bool all_known = true;
    for (const Value* v : n.inputs) {
      InferContext::Input in;
      const Tensor* val = nullptr;
      if (v) {
        in.present = true;
        in.dtype = v->dtype;
        if (v->initializer) val = v->initializer;
        else if (auto it = r.values.find(v); it != r.values.end()) val = &it->second;
        if (val) in.shape = val->shape();
        else if (auto it = r.dims.find(v); it != r.dims.end()) in.shape = Shape::from_static(it->second);
        else in.shape = v->shape;
        in.value = val;
        all_known = all_known && val;
      }
      ins.push_back(std::move(in));
      vals.push_back(val);
    }
    const OpSchema* schema = OpRegistry::global().find(n.domain, n.op_type);
    if (!schema) return err(n.label(), ": unsupported operator");
    InferContext ctx(n, std::move(ins), n.outputs.size());
    KILN_RETURN_IF_ERROR(infer_node(*schema, ctx));
    bool small = true;
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      const auto& o = ctx.output(i);
      if (!n.has_output(i) || !o.shape.is_static()) { small = false; continue; }
      auto d = o.shape.static_dims();
      auto numel = checked_numel(d, n.label() + " output");
      if (!numel) return numel.status();
      small = small && *numel <= kMaxHostValueElements;
      r.dims[n.outputs[i]] = std::move(d);
    }
    if (!all_known) {
      if (auto v = shape_value(n, r.dims)) {
        r.dims[n.outputs[0]] = v->dims();
        r.values[n.outputs[0]] = std::move(*v);
        continue;
      }
    }
    // Nodes with subgraphs (If/Loop/Scan) are not evaluated here: their outputs stay dynamic.
    if (all_known && small && !is_random(n) && n.subgraphs().empty()) {
      auto outs = cpu::run_node(n, vals);
      if (!outs) return outs.status();
      for (size_t i = 0; i < n.outputs.size(); ++i)
        if (n.has_output(i)) {
          r.dims[n.outputs[i]] = (*outs)[i].dims();
          r.values[n.outputs[i]] = std::move((*outs)[i]);
        }
    }
  }
  return r;
}

uint64_t peak_live_bytes(const Graph& graph, const ValueShapes& shapes) {
  std::map<const Value*, size_t> last;
  const auto& nodes = graph.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const Value* v : nodes[i]->inputs) if (v) last[v] = i;
    for (const Value* v : nodes[i]->implicit_inputs()) last[v] = i;  // read by a subgraph
  }
  for (const Value* v : graph.outputs) last[v] = nodes.size();
  auto bytes = [&](const Value* v) -> uint64_t {
    auto it = shapes.dims.find(v);
    if (it == shapes.dims.end() || v->initializer) return 0;
    uint64_t n = 1;
    for (int64_t d : it->second) n *= static_cast<uint64_t>(d);
    return static_cast<uint64_t>(dtype_nbytes(v->dtype, static_cast<int64_t>(n)));  // packed types: ceil
  };
  uint64_t live = 0, peak = 0;
  for (const Value* in : graph.inputs) live += bytes(in);
  peak = live;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const Value* out : nodes[i]->outputs) if (out) live += bytes(out);
    peak = std::max(peak, live);
    auto release = [&](const Value* v) {
      if (v && !v->initializer && last[v] == i) { live -= bytes(v); last[v] = SIZE_MAX; }
    };
    for (const Value* v : nodes[i]->inputs) release(v);
    for (const Value* v : nodes[i]->implicit_inputs()) release(v);
    for (const Value* out : nodes[i]->outputs)  // produced but never read
      if (out && !last.count(out)) live -= bytes(out);
  }
  return peak;
}

}  // namespace kiln::engine
