#include "quant/accuracy_guard.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "backends/cpu/executor.h"
#include "core/log.h"

namespace kiln::quant {

namespace {

using Outputs = std::vector<std::vector<Tensor>>;  // per batch, the graph outputs

Expected<Outputs> run_all(const Graph& g, const std::vector<std::map<std::string, Tensor>>& batches) {
  KILN_ASSIGN_OR_RETURN(auto exec, cpu::Executor::create(g));
  Outputs out;
  for (const auto& b : batches) {
    auto r = exec->run(b);
    if (!r) return err("accuracy guard: ", r.status().message());
    out.push_back(std::move(*r));
  }
  return out;
}

double rel_l2(const Outputs& ref, const Outputs& got) {
  double num = 0, den = 0;
  for (size_t b = 0; b < ref.size(); ++b)
    for (size_t k = 0; k < ref[b].size(); ++k) {
      const Tensor& r = ref[b][k];
      const Tensor& q = got[b][k];
      if (!dtype_is_float(r.dtype()) || r.numel() != q.numel()) continue;
      for (int64_t i = 0; i < r.numel(); ++i) {
        const double a = r.get_as_double(i), d = q.get_as_double(i) - a;
        num += d * d;
        den += a * a;
      }
    }
  if (!std::isfinite(num)) return INFINITY;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::string fmt(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", x);
  return b;
}

}  // namespace

Expected<GuardReport> accuracy_guard(Graph& g, const std::vector<QuantizedLayer>& layers,
                                     const std::vector<std::map<std::string, Tensor>>& batches, double tolerance,
                                     const std::function<bool(const Node&)>& pinned) {
  GuardReport r;
  if (layers.empty() || batches.empty()) return r;
  auto set_all = [&](bool on) { for (const auto& l : layers) set_int8(l, on); };
  set_all(false);
  KILN_ASSIGN_OR_RETURN(Outputs ref, run_all(g, batches));
  set_all(true);
  KILN_ASSIGN_OR_RETURN(Outputs all, run_all(g, batches));
  r.error_all = r.error_final = rel_l2(ref, all);
  if (tolerance <= 0 || r.error_all <= tolerance) return r;

  // Sensitivity of each movable layer: the relative L2 error INT8 gives at its own output, on the
  // float graph's activations (one float run that keeps each layer's inputs and output, then the
  // layer alone, with its input quantized-dequantized and its weights fake-quantized).
  set_all(false);
  std::map<const Value*, std::vector<Tensor>> seen;  // per batch
  for (const auto& l : layers) {
    for (const Value* v : l.node->inputs) if (v && !v->initializer) seen[v];
    seen[l.node->outputs[0]];
  }
  {
    KILN_ASSIGN_OR_RETURN(auto exec, cpu::Executor::create(g));
    for (const auto& b : batches) {
      auto r = exec->run(b, nullptr, [&](const Value& v, const Tensor& t) {
        if (auto it = seen.find(&v); it != seen.end()) it->second.push_back(t);
      });
      if (!r) return err("accuracy guard: ", r.status().message());
    }
  }
  std::vector<std::pair<double, size_t>> order;
  for (size_t i = 0; i < layers.size(); ++i) {
    const QuantizedLayer& l = layers[i];
    if (pinned && pinned(*l.node)) continue;
    const Node* q = l.x_dq->producer->inputs[0]->producer;  // the QuantizeLinear of x
    const Node* dq = l.x_dq->producer;
    double num = 0, den = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
      auto at = [&](const Value* v) -> const Tensor* {
        if (v->initializer) return v->initializer;
        auto it = seen.find(v);
        return it != seen.end() && b < it->second.size() ? &it->second[b] : nullptr;
      };
      const Tensor* x = at(l.x);
      const Tensor* ref = at(l.node->outputs[0]);
      if (!x || !ref) return err("accuracy guard: no float activation of ", l.node->label());
      KILN_ASSIGN_OR_RETURN(auto xq, cpu::run_node(*q, {x, q->inputs[1]->initializer, q->inputs[2]->initializer}));
      KILN_ASSIGN_OR_RETURN(auto xdq, cpu::run_node(*dq, {&xq[0], dq->inputs[1]->initializer, dq->inputs[2]->initializer}));
      std::vector<const Tensor*> in;
      for (size_t k = 0; k < l.node->inputs.size(); ++k) {
        const Value* v = l.node->inputs[k];
        in.push_back(k == 0 ? &xdq[0] : k == 1 ? l.w_q->initializer : v ? at(v) : nullptr);
        if (v && !in.back()) return err("accuracy guard: no float activation for input ", k, " of ", l.node->label());
      }
      KILN_ASSIGN_OR_RETURN(auto y, cpu::run_node(*l.node, in));
      for (int64_t e = 0; e < ref->numel(); ++e) {
        const double a = ref->get_as_double(e), d = y[0].get_as_double(e) - a;
        num += d * d;
        den += a * a;
      }
    }
    const double e = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    order.emplace_back(std::isfinite(e) ? e : INFINITY, i);
    log_verbose("INT8 accuracy guard: " + l.node->name + ": relative L2 error at its output in INT8 " + fmt(e));
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  set_all(true);
  // Keep the k most sensitive layers in float, k as small as the tolerance allows: k doubles until
  // the error is within it, then a binary search between the last two (the error falls, roughly
  // monotonically, as layers go back to float), so O(log n) whole-network runs.
  std::map<size_t, double> measured;  // k -> output error
  auto error_with = [&](size_t k) -> Expected<double> {
    if (auto it = measured.find(k); it != measured.end()) return it->second;
    for (size_t j = 0; j < order.size(); ++j) set_int8(layers[order[j].second], j >= k);
    KILN_ASSIGN_OR_RETURN(Outputs now, run_all(g, batches));
    const double e = rel_l2(ref, now);
    log_verbose("INT8 accuracy guard: " + std::to_string(k) + " most sensitive layers in float: output error " + fmt(e));
    return measured[k] = e;
  };
  size_t lo = 0, hi = 1;  // error(lo) > tolerance
  for (;;) {
    hi = std::min(hi, order.size());
    KILN_ASSIGN_OR_RETURN(double e, error_with(hi));
    if (e <= tolerance || hi == order.size()) break;
    lo = hi;
    hi *= 2;
  }
  if (measured[hi] <= tolerance) {
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      KILN_ASSIGN_OR_RETURN(double e, error_with(mid));
      (e <= tolerance ? hi : lo) = mid;
    }
  }
  KILN_ASSIGN_OR_RETURN(r.error_final, error_with(hi));  // leaves the graph at k = hi
  for (size_t j = 0; j < hi; ++j) {
    const size_t i = order[j].second;
    r.kept.push_back({layers[i].node->name, order[j].first, measured.count(j + 1) ? measured[j + 1] : -1});
  }
  return r;
}

Expected<std::vector<std::map<std::string, Tensor>>> random_guard_inputs(
    const Graph& g, const std::map<std::string, std::vector<int64_t>>& shapes, int count) {
  std::mt19937 rng(20261207);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<std::map<std::string, Tensor>> out(static_cast<size_t>(count));
  for (const Value* in : g.inputs) {
    if (in->dtype != DataType::kFloat32)
      return err("INT8 accuracy guard: input '", in->name, "' is ", dtype_name(in->dtype),
                 ": random inputs are float32 only; give calibration data (--calibData/--calibImages) so the guard "
                 "measures on its batches");
    auto it = shapes.find(in->name);
    if (it == shapes.end()) return err("INT8 accuracy guard: no shape for input '", in->name, "'");
    for (auto& batch : out) {
      KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(DataType::kFloat32, it->second));
      for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = normal(rng);
      batch.emplace(in->name, std::move(t));
    }
  }
  return out;
}

}  // namespace kiln::quant
