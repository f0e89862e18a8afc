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

  // Sensitivity of each movable layer: the error with it alone in INT8.
  std::vector<std::pair<double, size_t>> order;
  set_all(false);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (pinned && pinned(*layers[i].node)) continue;
    set_int8(layers[i], true);
    KILN_ASSIGN_OR_RETURN(Outputs one, run_all(g, batches));
    set_int8(layers[i], false);
    const double e = rel_l2(ref, one);
    order.emplace_back(e, i);
    log_verbose("INT8 accuracy guard: " + layers[i].node->name + " alone in INT8: output error " + fmt(e));
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  set_all(true);
  for (const auto& [e, i] : order) {
    set_int8(layers[i], false);
    KILN_ASSIGN_OR_RETURN(Outputs now, run_all(g, batches));
    r.error_final = rel_l2(ref, now);
    r.kept.push_back({layers[i].node->name, e, r.error_final});
    if (r.error_final <= tolerance) break;
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
