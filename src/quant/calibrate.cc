#include "quant/calibrate.h"

#include <cstring>
#include <memory>
#include <set>

#include "backends/cpu/executor.h"
#include "core/log.h"
#include "quant/calibration_algorithms.h"
#include "quant/calibration_cache.h"
#include "quant/histogram.h"

namespace kiln::quant {

namespace {

// The tensors that get a scale: floating-point graph inputs and node outputs, in graph order.
std::vector<const Value*> calibrated_values(const Graph& g) {
  std::vector<const Value*> out;
  std::set<const Value*> seen;
  auto add = [&](const Value* v) {
    if (v && dtype_is_float(v->dtype) && !v->initializer && seen.insert(v).second) out.push_back(v);
  };
  for (const Value* v : g.inputs) add(v);
  for (const auto& n : g.nodes())
    for (const Value* v : n->outputs) add(v);
  return out;
}

std::string list_names(const std::vector<std::string>& names, size_t max) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < max; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > max) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

// The cache's scales for the network, or an error when it names none of its tensors.
Expected<CalibrationResult> use_cache(const Graph& g, const CalibrationCache& cache, const std::string& source) {
  std::vector<std::string> unknown, missing;
  CalibrationResult r;
  r.from_cache = true;
  for (const auto& [name, scale] : cache.scales) {
    if (g.find_value(name)) r.scales.emplace_back(name, scale);
    else unknown.push_back(name);
  }
  std::vector<std::string> network;
  for (const Value* v : calibrated_values(g)) network.push_back(v->name);
  if (r.scales.empty())
    return err(source, ": the calibration cache names none of the network's tensors (it names ",
               list_names(unknown, 3), "; the network's include ", list_names(network, 3),
               "): a cache of another model? Delete it (or give another --calib path) to calibrate again");
  std::set<std::string> have;
  for (const auto& s : r.scales) have.insert(s.first);
  for (const auto& n : network) if (!have.count(n)) missing.push_back(n);
  log_info("read " + std::to_string(r.scales.size()) + " scales from " + source + " (" + cache.algorithm +
           "): no calibration");
  if (!unknown.empty())
    log_warning(source + ": " + std::to_string(unknown.size()) + " tensors of the cache are not in the network: " +
                list_names(unknown, 3));
  if (!missing.empty())
    log_warning(source + ": no scale for " + std::to_string(missing.size()) + " tensors of the network: " +
                list_names(missing, 3));
  return r;
}

// Copies the calibrator's host buffers into tensors of the graph inputs' types and shapes.
Expected<std::map<std::string, Tensor>> batch_tensors(const Graph& g, const std::vector<void*>& bindings,
                                                      const std::map<std::string, std::vector<int64_t>>& shapes,
                                                      int batch) {
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const Value* in = g.inputs[i];
    if (!bindings[i])
      return err("calibration batch ", batch, ": the calibrator gave no data for input '", in->name, "' (",
                 g.inputs.size(), " inputs; getBatch must fill a binding for each)");
    KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(in->dtype, shapes.at(in->name)));
    std::memcpy(t.mutable_raw(), bindings[i], t.nbytes());
    out.emplace(in->name, std::move(t));
  }
  return out;
}

Expected<CalibrationResult> run_calibration(const Graph& g, Int8Calibrator& c,
                                            const std::map<std::string, std::vector<int64_t>>& shapes) {
  for (const Value* in : g.inputs)
    if (!shapes.count(in->name)) return err("calibration: no shape for input '", in->name, "'");
  KILN_ASSIGN_OR_RETURN(auto exec, cpu::Executor::create(g));
  const std::vector<const Value*> values = calibrated_values(g);
  std::map<const Value*, AbsHistogram> hist;
  for (const Value* v : values) hist[v];
  std::vector<float> scratch;
  auto observe = [&](const Value& v, const Tensor& t) {
    auto it = hist.find(&v);
    if (it == hist.end() || !t.defined()) return;
    if (t.dtype() == DataType::kFloat32) return it->second.add(t.data<float>(), static_cast<size_t>(t.numel()));
    scratch.resize(static_cast<size_t>(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) scratch[i] = static_cast<float>(t.get_as_double(i));
    it->second.add(scratch.data(), scratch.size());
  };
  std::vector<const char*> names;
  for (const Value* in : g.inputs) names.push_back(in->name.c_str());
  CalibrationResult r;
  for (;;) {
    std::vector<void*> bindings(g.inputs.size(), nullptr);
    if (!c.getBatch(bindings.data(), names.data(), static_cast<int>(names.size()))) {
      if (const char* e = c.getLastError()) return err("calibration: ", e);
      break;
    }
    KILN_ASSIGN_OR_RETURN(auto inputs, batch_tensors(g, bindings, shapes, r.batches));
    auto outs = exec->run(inputs, nullptr, observe);
    if (r.held.size() < kHeldBatches) r.held.push_back(inputs);
    if (!outs) return err("calibration batch ", r.batches, ": ", outs.status().message());
    ++r.batches;
    log_verbose("calibration batch " + std::to_string(r.batches) + " done");
  }
  if (r.batches == 0) return err("calibration: the calibrator gave no batch (no calibration data)");
  const CalibrationAlgoType algo = c.getAlgorithm();
  for (const Value* v : values) {
    const AbsHistogram& h = hist[v];
    r.scales.emplace_back(v->name, static_cast<float>(compute_amax(h, algo, c.getQuantile()) / 127.0));
  }
  log_info("calibrated " + std::to_string(r.scales.size()) + " tensors over " + std::to_string(r.batches) +
           " batches (" + calibrationAlgoName(algo) + ", float32 on the CPU backend)");
  return r;
}

}  // namespace

Expected<CalibrationResult> calibrate(const Graph& graph, Int8Calibrator& calibrator,
                                      const std::map<std::string, std::vector<int64_t>>& shapes) {
  const char* src = calibrator.getCacheSource();
  const std::string source = src ? src : "the calibration cache";
  size_t length = 0;
  const void* bytes = calibrator.readCalibrationCache(length);
  if (bytes && length > 0) {
    KILN_ASSIGN_OR_RETURN(CalibrationCache cache,
                          parse_calibration_cache(std::string_view(static_cast<const char*>(bytes), length), source));
    return use_cache(graph, cache, source);
  }
  KILN_ASSIGN_OR_RETURN(CalibrationResult r, run_calibration(graph, calibrator, shapes));
  CalibrationCache cache{kCacheVersion, calibrationAlgoName(calibrator.getAlgorithm()), r.scales};
  const std::string text = format_calibration_cache(cache);
  calibrator.writeCalibrationCache(text.data(), text.size());
  return r;
}

Expected<CalibrationResult> calibrate_for_build(const Graph& graph, const BuilderConfig& config,
                                                const std::map<std::string, std::vector<int64_t>>& default_shapes) {
  for (const auto& n : graph.nodes())
    if ((n->domain.empty() || n->domain == "ai.onnx") &&
        (n->op_type == "QuantizeLinear" || n->op_type == "DequantizeLinear")) {
      // As TensorRT: a network with Q/DQ nodes is explicitly quantized; its own scales rule.
      log_info("INT8: the network is explicitly quantized (" + n->label() + "): no calibration, the calibrator and "
               "cache are not used");
      return CalibrationResult{};
    }
  Int8Calibrator* c = config.getInt8Calibrator();
  if (!c) {
    log_warning("INT8: no calibrator and no calibration cache (--calib, --calibImages, --calibData): no scales; "
                "layers compute in float");
    return CalibrationResult{};
  }
  std::map<std::string, std::vector<int64_t>> shapes = default_shapes;
  if (const OptimizationProfile* p = config.getCalibrationProfile()) {
    for (const auto& [name, dims] : p->entries()) {
      const Value* v = graph.find_value(name);
      if (!v || !v->is_graph_input) return err("calibration profile names '", name, "', which is not an input of the network");
      const std::vector<int64_t>& opt = dims[static_cast<int>(OptProfileSelector::kOPT)];
      if (v->shape.rank_known() && v->shape.rank() != opt.size())
        return err("calibration profile: input '", name, "' has rank ", v->shape.rank(), ", not ", opt.size(),
                   " (", dimsToString(opt), ")");
      for (size_t k = 0; k < opt.size() && v->shape.rank_known(); ++k)
        if (v->shape[k].is_static() && v->shape[k].value() != opt[k])
          return err("calibration profile: input '", name, "' dim ", k, " is fixed at ", v->shape[k].value(),
                     " by the model, not ", opt[k]);
      shapes[name] = opt;
    }
  }
  return calibrate(graph, *c, shapes);
}

}  // namespace kiln::quant
