// Inference through the public Runtime API: run-time shapes, input data (--loadInputs or
// random), the trtexec timing loop (--warmUp, --iterations, --duration), --streams contexts on
// as many threads, and the per-layer profile.
#pragma once
#include <map>
#include <memory>

#include "tools/kiln/options.h"

namespace kiln::cli {

struct HostTensor {
  std::string name;
  TensorType type = TensorType::kFLOAT;
  Dims dims;
  std::vector<uint8_t> bytes;
};

// One timed query, in ms since the start of the run, as trtexec's per-iteration record. On CUDA
// engines the enqueue times are host clock times of the enqueue (or graph launch) call, and
// the H2D/compute/D2H times come from CUDA events around the input copies, the enqueue and the
// output copies on the context's stream. The CPU backend runs synchronously: the enqueue call
// is the compute, and there are no host/device transfers (h2d and d2h take no time).
struct QueryTime {
  double start_enq = 0, end_enq = 0;
  double start_h2d = 0, end_h2d = 0, start_compute = 0, end_compute = 0, start_d2h = 0, end_d2h = 0;
  double h2d_ms() const { return end_h2d - start_h2d; }
  double compute_ms() const { return end_compute - start_compute; }
  double d2h_ms() const { return end_d2h - start_d2h; }
  double latency_ms() const { return end_d2h - start_h2d; }  // first to last event
  double enq_ms() const { return end_enq - start_enq; }
  static QueryTime host(double start, double end) { return {start, end, start, start, start, end, end, end}; }
};

// Per-layer times in the order layers first reported, one entry per profiled run.
struct LayerProfile {
  std::vector<std::string> order;
  std::map<std::string, std::vector<float>> ms;
  int runs = 0;
  void merge(const LayerProfile& other);  // appends other's times layer by layer
};

// Collects the per-layer times an engine reports (CUDA: events around each layer, inside the
// backend).
class LayerProfiler : public Profiler {
 public:
  void reportLayerTime(const char* layer, float ms) noexcept override {
    auto [it, fresh] = p_.ms.try_emplace(layer);
    if (fresh) p_.order.push_back(layer);
    it->second.push_back(ms);
  }
  LayerProfile& profile() { return p_; }

 private:
  LayerProfile p_;
};

struct InferenceResult {
  std::vector<QueryTime> queries;  // all streams, by start time
  double walltime_ms = 0;          // first query's start to the last one's end
  bool cuda = false;               // a CUDA engine (else the CPU backend's synchronous runs)
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

// CUDA engines (tools/kiln/cuda_inference.cc; without KILN_WITH_CUDA these fail with CliError).
// --device=N: checks that device N exists and makes it current (before any other CUDA call).
void select_device(const Options& o);
// Device buffers per context, H2D/enqueue/D2H per query on the context's own stream with CUDA
// events, --useCudaGraph, --noDataTransfers, --useSpinWait, --streams threads.
InferenceResult run_inference_cuda(Engine& engine, const std::vector<HostTensor>& inputs, const Options& o,
                                   CliLogger& logger);
std::vector<HostTensor> run_once_cuda(Engine& engine, const std::vector<HostTensor>& inputs, int profile,
                                      CliLogger& logger);
// Shared by both runners: the timed queries of all streams sorted, walltime, merged profiles.
void finish_result(InferenceResult& r, std::vector<std::vector<QueryTime>>& times);

// Element i as a double (any TensorType).
double element_as_double(const HostTensor& t, size_t i);
// Fills t deterministically (seeded by its name); returns the range, e.g. "random values in [-1, 1]".
std::string fill_random(HostTensor& t);
// Reads a raw little-endian file of exactly t's size into t (else CliError naming both sizes).
void load_raw(HostTensor& t, const std::string& file);

}  // namespace kiln::cli
