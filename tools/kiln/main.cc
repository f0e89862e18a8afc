// kiln: trtexec's command line on kiln's public API. Build (or load) an engine, run it, report.
#include <chrono>
#include <cstdio>
#include <memory>
#include <new>
#include <string>

#include "tools/kiln/build.h"
#include "tools/kiln/exports.h"
#include "tools/kiln/inference.h"
#include "tools/kiln/report.h"
#include "tools/kiln/serve.h"
#include "tools/kiln/validate.h"

namespace kiln::cli {
namespace {

// Output paths are checked before any long work, so a typo fails at once.
void check_outputs(const Options& o) {
  const std::pair<const std::string*, const char*> paths[] = {
      {&o.save_engine, "--saveEngine"},   {&o.export_output, "--exportOutput"},
      {&o.export_times, "--exportTimes"}, {&o.export_profile, "--exportProfile"},
      {&o.export_layer_info, "--exportLayerInfo"}};
  for (const auto& [path, flag] : paths)
    if (!path->empty()) check_writable(*path, std::string(flag) + " file");
}

void print_engine(const Engine& e) {
  info("Engine backend: " + e.getBackend());
  info("Total Activation Memory: " + std::to_string(e.getDeviceMemorySize()) + " bytes");
  for (int i = 0; i < e.getNbIOTensors(); ++i) {
    std::string name = e.getIOTensorName(i);
    bool in = e.getTensorIOMode(name) == TensorIOMode::kINPUT;
    std::string line = std::string(in ? "Input" : "Output") + " tensor '" + name + "': " +
                       tensorTypeName(e.getTensorDataType(name)) + " " + dimsToString(e.getTensorShape(name));
    for (int p = 0; in && p < e.getNbOptimizationProfiles(); ++p)
      line += ", profile " + std::to_string(p) + " [" +
              dimsToString(e.getProfileShape(name, p, OptProfileSelector::kMIN)) + " .. " +
              dimsToString(e.getProfileShape(name, p, OptProfileSelector::kMAX)) + "]";
    info(line);
  }
}

std::unique_ptr<Engine> get_engine(const Options& o, CliLogger& logger, Runtime& runtime,
                                   std::vector<uint8_t>& bytes) {
  if (o.load_engine.empty()) {
    bytes = build_engine(o, logger);
    auto e = runtime.deserialize(bytes.data(), bytes.size());
    if (!e) logger.fail_api("cannot load the built engine");
    return e;
  }
  auto start = std::chrono::steady_clock::now();
  auto e = runtime.deserializeFromFile(o.load_engine);
  if (!e) logger.fail_api("--loadEngine");
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char msg[64];
  std::snprintf(msg, sizeof msg, "%.4f", sec);
  info("Loaded engine '" + o.load_engine + "' (backend " + e->getBackend() + ") in " + msg + " sec");
  if (o.verbose)  // the build-time choices the engine recorded (the build log shows them as "-> tactic")
    for (int i = 0; i < e->getNbLayers(); ++i) {
      const LayerInfo l = e->getLayerInformation(i);
      info("Layer " + l.name + " (" + l.op_type + ", " + l.precision + ") -> tactic " + l.tactic +
           (l.tactic_ms >= 0 ? " (" + std::to_string(l.tactic_ms) + " ms; runner-up " + l.runner_up + " " +
                                   std::to_string(l.runner_up_ms) + " ms)"
                             : ""));
    }
  return e;
}

// --backend=cpu|cuda with --loadEngine: the saved engine must be of that backend. Flags for
// CUDA engines are ignored on a CPU engine, with a warning.
void check_backend(const Options& o, const Engine& e) {
  if (!o.load_engine.empty() && o.backend != "auto" && o.backend != e.getBackend())
    fail("--backend=", o.backend, ": the engine from --loadEngine is a ", e.getBackend(), " engine");
  if (e.getBackend() == "cuda") return;
  std::vector<std::string> ignored;
  if (o.use_cuda_graph) ignored.push_back("--useCudaGraph");
  if (o.no_data_transfers) ignored.push_back("--noDataTransfers");
  if (o.use_spin_wait) ignored.push_back("--useSpinWait");
  if (!ignored.empty())
    warning(join(ignored, ", ") + ": ignored, the engine runs on the CPU backend (synchronous, no host/device "
            "transfers)");
}

void run(const Options& o, CliLogger& logger) {
  select_device(o);  // before any other CUDA call
  for (const auto& n : o.notices) warning(n);
  check_outputs(o);
  Runtime runtime(logger);
  std::vector<uint8_t> bytes;
  auto engine = get_engine(o, logger, runtime, bytes);
  print_engine(*engine);
  check_backend(o, *engine);
  std::vector<HostTensor> inputs;
  if (!o.skip_inference || !o.load_inputs.empty() || !o.shapes.empty()) inputs = prepare_inputs(*engine, o, logger);
  if (!o.save_engine.empty()) {
    write_file_atomic(o.save_engine, bytes.data(), bytes.size(), "--saveEngine file");
    info("Engine saved to '" + o.save_engine + "'");
  }
  if (!o.export_layer_info.empty()) export_layer_info(o.export_layer_info, *engine);
  if (o.dump_tactics) print_tactics_table(*engine);
  if (o.skip_inference) {
    info("Skipped inference (--skipInference)");
    return;
  }
  InferenceResult r = run_inference(*engine, inputs, o, logger);
  if (o.dump_output) print_outputs(r.outputs);
  if (!o.export_output.empty()) export_output(o.export_output, r.outputs);
  if (!o.export_times.empty()) export_times(o.export_times, r);
  if (r.profiled && !o.export_profile.empty()) export_profile(o.export_profile, r.profile);
  print_performance_summary(r, o);
  if (r.profiled && o.dump_profile) print_profile_table(r.profile);
  if (o.validate) validate_outputs(o, inputs, r.outputs, logger);
}

std::string command_line(int argc, char** argv) {
  std::string s = "kiln";
  for (int i = 1; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

}  // namespace
}  // namespace kiln::cli

int main(int argc, char** argv) {
  using namespace kiln::cli;
  if (argc >= 2 && std::string(argv[1]) == "serve") return exec_serve(argc, argv);  // python -m kiln.serve
  const std::string banner = "kiln [kiln v0.1.0] # " + command_line(argc, argv);
  std::printf("&&&& RUNNING %s\n", banner.c_str());
  try {
    Options o = parse_options(std::vector<std::string>(argv + 1, argv + argc));
    if (o.help) {
      std::fputs(usage().c_str(), stdout);
      std::printf("&&&& PASSED %s\n", banner.c_str());
      return 0;
    }
    if (o.list_kernels) {  // which kernel runs each op on each backend built in
      std::printf("%-7s %-10s %-28s %s\n", "backend", "domain", "op", "tactic");
      for (const auto& k : kiln::listKernels())
        std::printf("%-7s %-10s %-28s %s\n", k.backend.c_str(), k.domain.empty() ? "ai.onnx" : k.domain.c_str(),
                    k.op.c_str(), k.tactic.c_str());
      std::printf("&&&& PASSED %s\n", banner.c_str());
      return 0;
    }
    CliLogger logger(o.verbose ? kiln::Logger::Severity::kVERBOSE : kiln::Logger::Severity::kINFO);
    run(o, logger);
  } catch (const CliError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "[E] %s\n", e.what());
    std::printf("&&&& FAILED %s\n", banner.c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "[E] out of memory on the host\n");
    std::printf("&&&& FAILED %s\n", banner.c_str());
    return 1;
  }
  std::printf("&&&& PASSED %s\n", banner.c_str());
  return 0;
}
