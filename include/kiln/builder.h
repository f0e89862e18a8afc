// kiln public API: Builder -> Network (filled by OnnxParser) -> BuilderConfig ->
// buildSerializedNetwork(), the engine's bytes. Shaped like TensorRT's builder.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/calibrator.h"
#include "kiln/logger.h"
#include "kiln/types.h"

namespace kiln {

class Graph;  // the internal IR; Network owns one

// A network definition: the imported graph before optimization.
class Network {
 public:
  ~Network();
  int getNbInputs() const;
  int getNbOutputs() const;
  std::string getInputName(int i) const;
  std::string getOutputName(int i) const;
  // Shape of input i as the model declares it (-1 for dynamic dims).
  Dims getInputDims(int i) const;
  TensorType getInputType(int i) const;
  // Shape and type of output i as inferred from the model (-1 for dims known only at run time).
  Dims getOutputDims(int i) const;
  TensorType getOutputType(int i) const;
  // Fixes input i's shape, as TensorRT's ITensor::setDimensions: -1 keeps a dim dynamic, the
  // model's static dims must be kept; shapes are inferred again. False (network unchanged, the
  // reason in `error`) otherwise.
  bool setInputDims(int i, const Dims& dims, std::string* error = nullptr);
  int getNbLayers() const;
  Graph* graph() const { return graph_.get(); }  // for the parser and the builder

  // Per-layer precision, as TensorRT's ILayer::setPrecision / setOutputType (trtexec's
  // --layerPrecisions / --layerOutputTypes). `layer` is an ONNX node name of the network, an
  // engine layer name as --exportLayerInfo prints it ("conv1+Add+Relu"), or "*" (every layer; a
  // named layer overrides it). Types: kFLOAT, kHALF (needs BuilderFlag::kFP16), kINT8 (needs
  // kINT8; Conv/MatMul/Gemm layers only). They take effect with BuilderFlag
  // kPREFER_PRECISION_CONSTRAINTS or kOBEY_PRECISION_CONSTRAINTS; a name that matches no layer,
  // or a type kiln cannot honour, fails the build with the reason.
  void setLayerPrecision(const std::string& layer, TensorType type) { layer_precisions_[layer] = type; }
  void setLayerOutputType(const std::string& layer, TensorType type) { layer_output_types_[layer] = type; }
  void resetLayerPrecisions() { layer_precisions_.clear(); layer_output_types_.clear(); }
  const std::map<std::string, TensorType>& layerPrecisions() const { return layer_precisions_; }
  const std::map<std::string, TensorType>& layerOutputTypes() const { return layer_output_types_; }

 private:
  friend class Builder;
  friend class OnnxParser;
  Network();
  std::unique_ptr<Graph> graph_;
  std::map<std::string, TensorType> layer_precisions_, layer_output_types_;
};

enum class OptProfileSelector { kMIN = 0, kOPT = 1, kMAX = 2 };

// min/opt/max shapes of each dynamic input.
class OptimizationProfile {
 public:
  bool setDimensions(const std::string& input, OptProfileSelector which, const Dims& dims);
  Dims getDimensions(const std::string& input, OptProfileSelector which) const;
  bool isValid() const;  // every input has min <= opt <= max of equal rank
  const std::map<std::string, std::array<Dims, 3>>& entries() const { return shapes_; }

 private:
  std::map<std::string, std::array<Dims, 3>> shapes_;
};

// kOBEY_PRECISION_CONSTRAINTS (TensorRT's successor of kSTRICT_TYPES, the same flag here): every
// layer precision set on the network is honoured or the build fails; kPREFER_PRECISION_CONSTRAINTS:
// honoured where kiln can, a warning names the others. kDISABLE_TIMING_CACHE: the build neither
// reads nor writes a timing cache (--noBuilderCache).
enum class BuilderFlag {
  kFP16, kBF16, kINT8, kTF32, kSTRICT_TYPES, kPREFER_PRECISION_CONSTRAINTS, kDISABLE_TIMING_CACHE,
  kOBEY_PRECISION_CONSTRAINTS = kSTRICT_TYPES,
};
enum class MemoryPoolType { kWORKSPACE };
enum class BackendKind { kAUTO, kCPU, kCUDA };
// "auto", "cpu", "cuda": the name of the backend (as Engine::getBackend() returns it).
const char* backendName(BackendKind b);

// Receives build progress, as TensorRT's IProgressMonitor: phases (optionally nested) with a
// number of steps each. stepComplete returning false cancels the build.
class ProgressMonitor {
 public:
  virtual ~ProgressMonitor() = default;
  virtual void phaseStart(const char* phase, const char* parent, int nbSteps) noexcept = 0;
  virtual bool stepComplete(const char* phase, int step) noexcept = 0;
  virtual void phaseFinish(const char* phase) noexcept = 0;
};

// Where a tactic comes from, as TensorRT's TacticSource: BuilderConfig::setTacticSources takes a
// mask of 1u << value. A layer whose every candidate is left out keeps its backend's default.
enum class TacticSource : int {
  kCUBLAS = 0,      // not used by kiln (accepted for trtexec's command lines; changes nothing)
  kCUBLAS_LT = 1,   // CUDA: cuBLASLt algorithms
  kCUDNN = 2,       // CUDA: cuDNN algorithms
  kKILN = 5,        // CUDA: kiln's own kernels and their variants
  kOPENBLAS = 6,    // CPU: OpenBLAS GEMM
  kCPU_LOOPS = 7,   // CPU: kiln's own GEMM loops
};
using TacticSources = uint32_t;
constexpr TacticSources kAllTacticSources = (1u << 1) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7);

// The timing cache, as TensorRT's ITimingCache: tactic times keyed by device, library versions,
// layer signature and tactic id, shared across builds and models. Made empty or from a cache
// file's bytes (BuilderConfig::createTimingCache); the builder reads it before timing a layer and
// records what it timed into it.
class TimingCache {
 public:
  TimingCache();
  ~TimingCache();
  TimingCache(const TimingCache&) = delete;
  TimingCache& operator=(const TimingCache&) = delete;
  std::vector<uint8_t> serialize() const;  // the cache file's bytes
  // Adds the entries of `other` this cache lacks; the number added.
  int combine(const TimingCache& other);
  void reset();
  size_t size() const;  // entries
  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

class BuilderConfig {
 public:
  void setFlag(BuilderFlag f) { flags_[static_cast<int>(f)] = true; }
  void clearFlag(BuilderFlag f) { flags_[static_cast<int>(f)] = false; }
  bool getFlag(BuilderFlag f) const { return flags_[static_cast<int>(f)]; }
  void setMemoryPoolLimit(MemoryPoolType, size_t bytes) { workspace_ = bytes; }
  size_t getMemoryPoolLimit(MemoryPoolType) const { return workspace_; }
  // Returns the profile's index, or -1 (with an error logged by the builder) if invalid.
  int addOptimizationProfile(const OptimizationProfile& p);
  int getNbOptimizationProfiles() const { return static_cast<int>(profiles_.size()); }
  const std::vector<OptimizationProfile>& profiles() const { return profiles_; }
  void setBackend(BackendKind b) { backend_ = b; }
  BackendKind getBackend() const { return backend_; }
  void setInt8Calibrator(Int8Calibrator* c) { calibrator_ = c; }
  Int8Calibrator* getInt8Calibrator() const { return calibrator_; }
  // The shapes calibration runs at (the opt shapes); without it, profile 0's opt shapes.
  bool setCalibrationProfile(const OptimizationProfile& p) {
    if (!p.isValid()) return false;
    calib_profile_ = p;
    has_calib_profile_ = true;
    return true;
  }
  const OptimizationProfile* getCalibrationProfile() const { return has_calib_profile_ ? &calib_profile_ : nullptr; }
  // A timing cache file: read (a missing file is an empty cache; a corrupted or stale one gives
  // one warning and is re-timed), merged with what the build timed and written back atomically
  // at the end of the build (an unwritable path gives a warning; the engine is still built).
  void setTimingCachePath(const std::string& path) { timing_cache_ = path; }
  const std::string& getTimingCachePath() const { return timing_cache_; }
  // An in-memory timing cache, as TensorRT's: empty with (nullptr, 0), else parsed from a cache
  // file's bytes; null when the bytes are not a timing cache (the reason in `error`).
  std::shared_ptr<TimingCache> createTimingCache(const void* blob, size_t size, std::string* error = nullptr) const;
  // The builder reads and records into this cache (besides the file of setTimingCachePath).
  void setTimingCache(std::shared_ptr<TimingCache> cache) { cache_ = std::move(cache); }
  std::shared_ptr<TimingCache> getTimingCache() const { return cache_; }
  void setTacticSources(TacticSources s) { tactic_sources_ = s; }
  TacticSources getTacticSources() const { return tactic_sources_; }
  // Timed runs per tactic (the median is kept), after warm-up runs; >= 1.
  void setAvgTimingIterations(int n) { avg_timing_ = n < 1 ? 1 : n; }
  int getAvgTimingIterations() const { return avg_timing_; }
  void setProgressMonitor(ProgressMonitor* m) { progress_ = m; }
  ProgressMonitor* getProgressMonitor() const { return progress_; }
  // 0 runs no graph optimization passes and times no tactic (a reference engine of the model as
  // imported, each layer on its backend's heuristic pick); 1..5 run the whole pipeline and time
  // the layers' candidate tactics (the default is 3, as in TensorRT; 5 lists every valid
  // candidate). The CUDA backend's timing awaits its check on a GPU: it tunes only when the level
  // is set explicitly (builderOptimizationLevelSet), and keeps its heuristic picks otherwise.
  void setBuilderOptimizationLevel(int level) { opt_level_ = level; opt_level_set_ = true; }
  int getBuilderOptimizationLevel() const { return opt_level_; }
  bool builderOptimizationLevelSet() const { return opt_level_set_; }
  // INT8 accuracy guard (kiln's own; 0 = off): the build measures the output error of the INT8
  // engine against float32 (relative L2 over the outputs, on up to 4 calibration batches, else on
  // 4 seeded random inputs) and keeps the layers whose INT8 costs most accuracy in float until
  // the error is at most `max_rel_l2`. The build log names each layer kept and its error.
  void setInt8Tolerance(double max_rel_l2) { int8_tolerance_ = max_rel_l2; }
  double getInt8Tolerance() const { return int8_tolerance_; }

 private:
  // One entry per flag (the last is kDISABLE_TIMING_CACHE); TF32 on by default, as in TensorRT.
  static constexpr int kNumFlags = static_cast<int>(BuilderFlag::kDISABLE_TIMING_CACHE) + 1;
  bool flags_[kNumFlags] = {false, false, false, true};
  size_t workspace_ = size_t(256) << 20;  // scratch each CUDA context allocates for cuBLASLt/cuDNN
  std::vector<OptimizationProfile> profiles_;
  BackendKind backend_ = BackendKind::kAUTO;
  Int8Calibrator* calibrator_ = nullptr;
  OptimizationProfile calib_profile_;
  bool has_calib_profile_ = false;
  std::string timing_cache_;
  ProgressMonitor* progress_ = nullptr;
  int opt_level_ = 3;
  bool opt_level_set_ = false;
  std::shared_ptr<TimingCache> cache_;
  TacticSources tactic_sources_ = kAllTacticSources;
  int avg_timing_ = 8;  // TensorRT's default
  double int8_tolerance_ = 0;
};

class Builder {
 public:
  explicit Builder(Logger& logger) : logger_(logger) {}
  std::unique_ptr<Network> createNetwork();
  std::unique_ptr<BuilderConfig> createBuilderConfig() { return std::make_unique<BuilderConfig>(); }
  // Optimizes the network and serializes the engine. Empty on failure (reason logged).
  std::vector<uint8_t> buildSerializedNetwork(Network& network, const BuilderConfig& config);

 private:
  Logger& logger_;
};

}  // namespace kiln
