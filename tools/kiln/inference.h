// Inference through the public Runtime API: run-time shapes, input data (--loadInputs or
// random), the trtexec timing loop (--warmUp, --iterations, --duration), --streams contexts on
// as many threads, and the per-layer profile.
#pragma once
#include <map>

#include "tools/kiln/options.h"

namespace kiln::cli {

struct HostTensor {
  std::string name;
  TensorType type = TensorType::kFLOAT;
  Dims dims;
  std::vector<uint8_t> bytes;
};

// One timed query (ms since the start of the timed run). The CPU backend runs synchronously:
// the enqueue call is the compute, with no host/device transfers.
struct QueryTime {
  double start_ms = 0, end_ms = 0;
};

// Per-layer times in the order layers first reported, one entry per profiled run.
struct LayerProfile {
  std::vector<std::string> order;
  std::map<std::string, std::vector<float>> ms;
  int runs = 0;
};

struct InferenceResult {
  std::vector<QueryTime> queries;  // all streams, by start time
  double walltime_ms = 0;
  std::vector<HostTensor> outputs;  // of the first context's last run
  LayerProfile profile;
  bool profiled = false;
};

// Inputs at their run-time shapes (--shapes, else the static shape, else the profile's opt);
// throws CliError for an unknown name, a shape outside the profile, or a file of the wrong size.
std::vector<HostTensor> prepare_inputs(Engine& engine, const Options& o, CliLogger& logger);
InferenceResult run_inference(Engine& engine, const std::vector<HostTensor>& inputs, const Options& o,
                              CliLogger& logger);
// One run on a fresh context (the --validate reference).
std::vector<HostTensor> run_once(Engine& engine, const std::vector<HostTensor>& inputs, int profile,
                                 CliLogger& logger);
// Element i as a double (any TensorType).
double element_as_double(const HostTensor& t, size_t i);
// Fills t deterministically (seeded by its name); returns the range, e.g. "random values in [-1, 1]".
std::string fill_random(HostTensor& t);
// Reads a raw little-endian file of exactly t's size into t (else CliError naming both sizes).
void load_raw(HostTensor& t, const std::string& file);

}  // namespace kiln::cli
