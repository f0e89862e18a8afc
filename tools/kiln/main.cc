// kiln: import an ONNX model, run it, report. trtexec's flags and report layout; the engine
// build/load path and the CUDA backend plug in here as they land.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "backends/cpu/executor.h"
#include "core/log.h"
#include "core/mapped_file.h"
#include "onnx/importer.h"
#include "tools/kiln/options.h"

namespace kiln::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The input's shape: --shapes if given, else the model's, with dynamic dims set to 1 (as
// trtexec does, with a notice).
Expected<std::vector<int64_t>> input_dims(const Value& in, const Options& o) {
  if (auto it = o.shapes.find(in.name); it != o.shapes.end()) {
    if (in.shape.rank_known() && it->second.size() != in.shape.rank())
      return err("--shapes: input '", in.name, "' has rank ", in.shape.rank(), " (", in.shape.to_string(),
                 "), got ", dims_to_string(it->second));
    return it->second;
  }
  if (!in.shape.rank_known()) return err("input '", in.name, "' has unknown rank: give its shape with --shapes");
  std::vector<int64_t> dims;
  for (const Dim& d : in.shape.dims()) dims.push_back(d.is_static() ? d.value() : 1);
  if (!in.shape.is_static())
    log_warning("input '" + in.name + "' has dynamic shape " + in.shape.to_string() + "; using " +
                dims_to_string(dims) + " (set it with --shapes)");
  return dims;
}

Expected<Tensor> make_input(const Value& in, const Options& o, std::mt19937& rng) {
  KILN_ASSIGN_OR_RETURN(auto dims, input_dims(in, o));
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(in.dtype, dims));
  if (auto it = o.load_inputs.find(in.name); it != o.load_inputs.end()) {
    KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(it->second));
    if (bytes.size() != t.nbytes())
      return err("--loadInputs: '", it->second, "' has ", bytes.size(), " bytes but input '", in.name, "' (",
                 t.describe(), ") needs ", t.nbytes());
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(t.mutable_raw()));
    return t;
  }
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  std::uniform_int_distribution<int> small(0, 3);
  KILN_RETURN_IF_ERROR(visit_dtype(in.dtype, AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.mutable_data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if constexpr (is_float_v<T>) p[i] = T(uni(rng));
      else p[i] = static_cast<T>(small(rng) % (std::is_same_v<T, bool> ? 2 : 4));
    }
  }));
  return t;
}

Status write_outputs_json(const std::string& path, const Graph& g, const std::vector<Tensor>& outs) {
  nlohmann::json j = nlohmann::json::array();
  for (size_t k = 0; k < outs.size(); ++k) {
    std::string dims;
    for (size_t i = 0; i < outs[k].rank(); ++i) dims += (i ? "x" : "") + std::to_string(outs[k].dim(i));
    std::vector<double> values(static_cast<size_t>(outs[k].numel()));
    for (int64_t i = 0; i < outs[k].numel(); ++i) values[i] = outs[k].get_as_double(i);
    j.push_back({{"name", g.outputs[k]->name}, {"dimensions", dims}, {"values", values}});
  }
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) return err("cannot write '", path, "'");
    f << j.dump(1) << "\n";
    if (!f) { std::remove(tmp.c_str()); return err("error writing '", path, "'"); }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) { std::remove(tmp.c_str()); return err("cannot write '", path, "'"); }
  return Status::ok();
}

void print_latency(const std::vector<double>& ms) {
  std::vector<double> s = ms;
  std::sort(s.begin(), s.end());
  double sum = 0;
  for (double v : s) sum += v;
  auto pct = [&](double p) { return s[std::min(s.size() - 1, static_cast<size_t>(p / 100.0 * s.size()))]; };
  std::printf("[I] === Performance summary ===\n");
  std::printf("[I] Throughput: %.3f qps\n", 1000.0 * s.size() / sum);
  std::printf("[I] Latency: min = %.4f ms, max = %.4f ms, mean = %.4f ms, median = %.4f ms, percentile(90%%) = %.4f ms, "
              "percentile(95%%) = %.4f ms, percentile(99%%) = %.4f ms\n",
              s.front(), s.back(), sum / s.size(), pct(50), pct(90), pct(95), pct(99));
  std::printf("[I] Total Host Walltime: %.4f s\n", sum / 1000.0);
}

Status run(const Options& o) {
  if (o.verbose) set_log_level(Severity::kVerbose);
  if (o.backend == "cuda") return err("--backend=cuda: this build of kiln has no CUDA backend");
  if (o.backend == "auto") std::printf("[I] No CUDA backend in this build: running on the CPU reference backend\n");
  auto t0 = Clock::now();
  KILN_ASSIGN_OR_RETURN(auto graph, onnx_import::import_file(o.onnx));
  std::printf("[I] Parsed '%s': %zu nodes, %zu initializers, %zu inputs, %zu outputs (%.1f ms)\n", o.onnx.c_str(),
              graph->nodes().size(), graph->num_initializers(), graph->inputs.size(), graph->outputs.size(),
              std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  if (o.verbose) std::printf("%s", print_graph(*graph).c_str());
  for (const auto& [name, dims] : o.shapes) {
    bool found = std::any_of(graph->inputs.begin(), graph->inputs.end(), [&](Value* v) { return v->name == name; });
    if (!found) return err("--shapes: the model has no input named '", name, "'");
  }
  for (const auto& [name, file] : o.load_inputs) {
    bool found = std::any_of(graph->inputs.begin(), graph->inputs.end(), [&](Value* v) { return v->name == name; });
    if (!found) return err("--loadInputs: the model has no input named '", name, "'");
  }
  KILN_ASSIGN_OR_RETURN(auto exec, cpu::Executor::create(*graph));
  std::mt19937 rng(1234);
  std::map<std::string, Tensor> inputs;
  for (const Value* in : graph->inputs) {
    KILN_ASSIGN_OR_RETURN(Tensor t, make_input(*in, o, rng));
    std::printf("[I] Input '%s': %s\n", in->name.c_str(), t.describe().c_str());
    inputs[in->name] = std::move(t);
  }
  std::vector<Tensor> outs;
  auto warm_end = Clock::now() + std::chrono::milliseconds(o.warmup_ms);
  do {
    KILN_ASSIGN_OR_RETURN(outs, exec->run(inputs));
  } while (Clock::now() < warm_end);
  std::vector<double> ms;
  for (int i = 0; i < std::max(1, o.iterations); ++i) {
    auto s = Clock::now();
    KILN_ASSIGN_OR_RETURN(outs, exec->run(inputs));
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
  }
  for (size_t k = 0; k < outs.size(); ++k) {
    std::printf("[I] Output '%s': %s\n", graph->outputs[k]->name.c_str(), outs[k].describe().c_str());
    if (o.dump_output) {
      std::printf("[I]  ");
      for (int64_t i = 0; i < outs[k].numel(); ++i) std::printf(" %g", outs[k].get_as_double(i));
      std::printf("\n");
    }
  }
  if (!o.export_output.empty()) KILN_RETURN_IF_ERROR(write_outputs_json(o.export_output, *graph, outs));
  print_latency(ms);
  return Status::ok();
}

}  // namespace
}  // namespace kiln::cli

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto opts = kiln::cli::parse_options(args);
  if (!opts) {
    std::fprintf(stderr, "[E] %s\n", opts.status().message().c_str());
    return 1;
  }
  if (opts->help) { std::fputs(kiln::cli::usage().c_str(), stdout); return 0; }
  kiln::Status s = kiln::cli::run(*opts);
  if (!s) {
    std::fprintf(stderr, "[E] %s\n", s.message().c_str());
    return 1;
  }
  std::printf("&&&& PASSED kiln\n");
  return 0;
}
