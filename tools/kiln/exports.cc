#include "tools/kiln/exports.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <nlohmann/json.hpp>

#include "tools/kiln/build.h"
#include "tools/kiln/report.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

void write_json(const std::string& path, const json& j, const std::string& what) {
  std::string text = j.dump(2) + "\n";
  write_file_atomic(path, text.data(), text.size(), what);
  info("Wrote " + what + " to '" + path + "'");
}

// JSON has no NaN/Inf: they are written as strings, as Python's json module reads them back.
json number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

}  // namespace

// [{"name", "dimensions": "1x1000", "values": [...]}]
void export_output(const std::string& path, const std::vector<HostTensor>& outputs) {
  json j = json::array();
  for (const HostTensor& t : outputs) {
    json values = json::array();
    for (size_t i = 0; i < volume(t.dims); ++i) values.push_back(number(element_as_double(t, i)));
    j.push_back({{"name", t.name}, {"dimensions", dimsToString(t.dims)}, {"values", std::move(values)}});
  }
  write_json(path, j, "--exportOutput");
}

// One record per query, as trtexec's: times in ms since the start of the run (CUDA: the enqueue
// call on the host, H2D/compute/D2H from CUDA events; CPU: H2D/D2H take no time and the compute
// is the synchronous enqueue).
void export_times(const std::string& path, const InferenceResult& r) {
  json j = json::array();
  for (const QueryTime& q : r.queries)
    j.push_back({{"startEnqMs", q.start_enq}, {"endEnqMs", q.end_enq}, {"startH2DMs", q.start_h2d},
                 {"endH2DMs", q.end_h2d}, {"startComputeMs", q.start_compute}, {"endComputeMs", q.end_compute},
                 {"startD2HMs", q.start_d2h}, {"endD2HMs", q.end_d2h}, {"h2dMs", q.h2d_ms()},
                 {"computeMs", q.compute_ms()}, {"d2hMs", q.d2h_ms()}, {"latencyMs", q.latency_ms()},
                 {"enqMs", q.enq_ms()}});
  write_json(path, j, "--exportTimes");
}

// [{"count": runs}, {"name", "timeMs", "averageMs", "medianMs", "percentage"}, ...]
void export_profile(const std::string& path, const LayerProfile& p) {
  double total = 0;
  for (const auto& [name, v] : p.ms) total += std::accumulate(v.begin(), v.end(), 0.0);
  json j = json::array({{{"count", p.runs}}});
  for (const std::string& name : p.order) {
    std::vector<double> v(p.ms.at(name).begin(), p.ms.at(name).end());
    std::sort(v.begin(), v.end());
    double sum = std::accumulate(v.begin(), v.end(), 0.0);
    j.push_back({{"name", name}, {"timeMs", sum}, {"averageMs", p.runs ? sum / p.runs : 0.0},
                 {"medianMs", median_of(v)}, {"percentage", total > 0 ? 100 * sum / total : 0.0}});
  }
  write_json(path, j, "--exportProfile");
}

// {"Layers": [{"Name", "LayerType", "Inputs": [{"Name"}], "Outputs": [...], "Precision",
//  "TacticName"}], "Bindings": [...]} as trtexec's engine inspector with detailed verbosity.
void export_layer_info(const std::string& path, const Engine& e) {
  json layers = json::array();
  auto tensors = [](const std::vector<std::string>& names) {
    json a = json::array();
    for (const auto& n : names) if (!n.empty()) a.push_back({{"Name", n}});
    return a;
  };
  for (int i = 0; i < e.getNbLayers(); ++i) {
    LayerInfo l = e.getLayerInformation(i);
    json layer = {{"Name", l.name}, {"LayerType", l.op_type}, {"Inputs", tensors(l.inputs)},
                  {"Outputs", tensors(l.outputs)}, {"Precision", l.precision}, {"TacticName", l.tactic}};
    if (l.tactic_candidates > 1) {  // tuned (issue 15): the chosen tactic's time and the runner-up's
      layer["TacticCandidates"] = l.tactic_candidates;
      if (l.tactic_ms >= 0) layer["TacticTimeMs"] = l.tactic_ms;
      layer["RunnerUp"] = l.runner_up;
      if (l.runner_up_ms >= 0) layer["RunnerUpTimeMs"] = l.runner_up_ms;
      layer["HeuristicTactic"] = l.heuristic_tactic;
      if (l.heuristic_ms >= 0) layer["HeuristicTimeMs"] = l.heuristic_ms;
    }
    layers.push_back(layer);
  }
  json bindings = json::array();
  for (int i = 0; i < e.getNbIOTensors(); ++i) bindings.push_back(e.getIOTensorName(i));
  write_json(path, {{"Layers", layers}, {"Bindings", bindings}}, "--exportLayerInfo");
}

}  // namespace kiln::cli
