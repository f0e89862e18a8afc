// kiln public API: Runtime::deserialize -> Engine -> ExecutionContext. An Engine holds the
// optimized graph and the weights once; any number of ExecutionContexts run it, each with its
// own activation memory and input shapes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/builder.h"
#include "kiln/logger.h"
#include "kiln/types.h"

namespace kiln {

class EngineImpl;
class ContextImpl;

// Receives each layer's time after a profiled run (setProfiler).
class Profiler {
 public:
  virtual ~Profiler() = default;
  virtual void reportLayerTime(const char* layer_name, float ms) noexcept = 0;
};

struct LayerInfo {
  std::string name;
  std::string op_type;     // e.g. "Conv", or a fused "kiln.ConvAct"
  std::string tactic;      // the kernel chosen at build time, e.g. "cpu.conv.im2col_gemm"
  std::string precision;   // element type the layer computes in
  std::vector<std::string> inputs, outputs;
  // Tuning: the candidate tactics the builder had, the chosen one's median time at the opt shapes,
  // the runner-up's, and the backend's own pick without timing (its first candidate, what
  // optimization level 0 runs) with its time: what tuning gained (times -1 where nothing was
  // timed, e.g. a layer with one candidate).
  int tactic_candidates = 0;
  double tactic_ms = -1;
  std::string runner_up;
  double runner_up_ms = -1;
  std::string heuristic_tactic;
  double heuristic_ms = -1;
};

// Supplies memory for an output whose size is known only once the run has computed it (a
// data-dependent shape, e.g. NonZero's), as TensorRT's IOutputAllocator.
class OutputAllocator {
 public:
  virtual ~OutputAllocator() = default;
  // Memory of at least `size` bytes for output `name` (`current` if it is large enough); null
  // fails the run.
  virtual void* reallocateOutput(const char* name, void* current, uint64_t size, uint64_t alignment) noexcept = 0;
  // The output's shape in this run.
  virtual void notifyShape(const char* name, const Dims& dims) noexcept = 0;
};

class ExecutionContext {
 public:
  ~ExecutionContext();
  // Sets a dynamic input's shape; false (and an error logged) when outside the profile.
  bool setInputShape(const std::string& name, const Dims& dims);
  // Shape of any I/O tensor under the current input shapes (-1 where not yet known).
  Dims getTensorShape(const std::string& name) const;
  // Where input data is read from / output data is written to (host memory on the CPU backend,
  // device memory on CUDA). The buffers must hold the tensor at its current shape.
  bool setTensorAddress(const std::string& name, void* ptr);
  // For an output: its memory comes from `allocator` after each run instead of a fixed address.
  bool setOutputAllocator(const std::string& name, OutputAllocator* allocator);
  // Runs asynchronously on `stream` (a cudaStream_t on CUDA; ignored on the CPU backend).
  bool enqueue(void* stream);
  // Runs and waits.
  bool execute();
  bool setOptimizationProfile(int index);
  int getOptimizationProfile() const;
  void setProfiler(Profiler* p);

 private:
  friend class Engine;
  explicit ExecutionContext(std::unique_ptr<ContextImpl> impl);
  std::unique_ptr<ContextImpl> impl_;
};

class Engine {
 public:
  ~Engine();
  int getNbIOTensors() const;
  std::string getIOTensorName(int i) const;
  TensorIOMode getTensorIOMode(const std::string& name) const;
  TensorType getTensorDataType(const std::string& name) const;
  Dims getTensorShape(const std::string& name) const;  // -1 for dynamic dims
  int getNbOptimizationProfiles() const;
  Dims getProfileShape(const std::string& input, int profile, OptProfileSelector which) const;
  // Activation memory one context needs at the largest profile shapes, in bytes.
  size_t getDeviceMemorySize() const;
  int getNbLayers() const;
  LayerInfo getLayerInformation(int i) const;
  std::string getBackend() const;  // "cpu" or "cuda"
  std::unique_ptr<ExecutionContext> createExecutionContext();
  EngineImpl& impl() { return *impl_; }

 private:
  friend class Runtime;
  explicit Engine(std::unique_ptr<EngineImpl> impl);
  std::unique_ptr<EngineImpl> impl_;
};

class Runtime {
 public:
  explicit Runtime(Logger& logger) : logger_(logger) {}
  // Validates everything (magic, version, checksum, bounds, device) before use; null on
  // failure with one clear error logged. Never re-runs optimization or tuning.
  std::unique_ptr<Engine> deserialize(const void* data, size_t size);
  std::unique_ptr<Engine> deserializeFromFile(const std::string& path);

 private:
  Logger& logger_;
};

}  // namespace kiln
