// INT8 calibration inside a build: the scale (amax / 127) of every floating-point tensor of the
// network as imported (graph inputs and node outputs, named as in the model, so a cache written
// by TensorRT for the same ONNX model fits). From the calibrator's cache when it has one that
// names tensors of the network; otherwise the float32 graph runs on the CPU backend over the
// calibrator's batches, each tensor's |x| histogram is collected (histogram.h) and reduced to a
// threshold by the calibrator's algorithm (calibration_algorithms.h), and the cache in
// TensorRT's text format goes to writeCalibrationCache().
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "kiln/builder.h"
#include "kiln/calibrator.h"

namespace kiln::quant {

struct CalibrationResult {
  std::vector<std::pair<std::string, float>> scales;  // tensor name -> scale, graph order
  bool from_cache = false;
  int batches = 0;  // batches calibrated from (0 when from the cache)
  // The first kHeldBatches batches' inputs, for the INT8 accuracy guard (accuracy_guard.h).
  std::vector<std::map<std::string, Tensor>> held;
};
constexpr size_t kHeldBatches = 4;

// `shapes`: each graph input's batch shape (the calibration profile's opt shapes).
Expected<CalibrationResult> calibrate(const Graph& graph, Int8Calibrator& calibrator,
                                      const std::map<std::string, std::vector<int64_t>>& shapes);

// The cache's header version: TensorRT 8.6.1's, the writer TensorRT's readers know.
constexpr const char* kCacheVersion = "8601";

// The INT8 step of a build, before the passes (which rename and fuse tensors): calibration at the
// config's calibration profile's opt shapes, else at `default_shapes` (profile 0's opt). Null
// calibrator: no scales (a warning says so).
Expected<CalibrationResult> calibrate_for_build(const Graph& graph, const BuilderConfig& config,
                                                const std::map<std::string, std::vector<int64_t>>& default_shapes);

}  // namespace kiln::quant
