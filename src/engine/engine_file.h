// The engine file: build once, save, load many times. Byte layout (little-endian):
//
//   [0, 8)    magic "KILNENG\0"
//   [8, 12)   format version (uint32)
//   [12, 16)  reserved, 0
//   [16, 24)  header size H (uint64)
//   [24, 32)  weights offset W, a multiple of 256 (uint64)
//   [32, 40)  weights size S (uint64)
//   [40, 48)  XXH64 of every byte after the preamble, [48, W + S)
//   [48, 48+H)  EngineHeader protobuf (engine.proto): graph, tactics, options, device, profiles
//   [W, W+S)  weights, each tensor 256-byte aligned
//
// Loading checks all of it before use; a bad file gets one error saying what is wrong and to
// rebuild the engine.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace kiln::engine {

// 2: tactic ids name the algorithm (cuda.conv.cudnn.<algo>...), the device records its libraries.
constexpr uint32_t kFormatVersion = 2;
constexpr size_t kWeightAlignment = 256;
extern const char* const kKilnVersion;

struct ProfileShapes {
  std::string input;
  std::vector<int64_t> min, opt, max;
};

struct BuildOptionsRecord {
  bool fp16 = false, bf16 = false, int8 = false, tf32 = true, strict_types = false;
  uint64_t workspace_bytes = 0;
};

// INT8 scales (issue 13): an activation's one scale, or a weight's per-channel scales.
struct TensorScaleRecord {
  std::string name;
  std::vector<float> scales;
  int axis = 0;        // weights: the output-channel axis
  std::string layer;   // weights: the layer that reads it
};

// How a layer's tactic was chosen (issue 15): its candidates, its median time and the runner-up's
// (times -1 where nothing was timed).
struct TacticTimingRecord {
  int candidates = 0;
  double ms = -1;
  std::string runner_up;
  double runner_up_ms = -1;
  std::string heuristic;  // the backend's own pick and its time (what tuning gained against)
  double heuristic_ms = -1;
};

// What an engine is, in memory: the optimized graph plus every build-time decision.
struct EngineModel {
  std::unique_ptr<Graph> graph;
  std::vector<std::string> tactics;     // per node of graph->nodes()
  std::vector<std::string> precisions;  // per node
  std::vector<TacticTimingRecord> timings;  // per node (empty: an engine built without tuning)
  std::string backend = "cpu";
  std::string device_name = "cpu";
  int cc_major = 0, cc_minor = 0;
  std::string device_libraries;         // e.g. "cuDNN 91400, cuBLASLt 130100" (CUDA engines)
  BuildOptionsRecord options;
  std::vector<std::vector<ProfileShapes>> profiles;
  uint64_t activation_bytes = 0;
  std::vector<TensorScaleRecord> int8_activation_scales, int8_weight_scales;
  std::string int8_calibration;  // "" when not calibrated
};

Expected<std::string> serialize(const EngineModel& model);
// Weights alias `data` (its owner is kept alive by the shared_ptr): loading copies nothing.
Expected<EngineModel> deserialize(std::shared_ptr<const std::byte> data, size_t size);

}  // namespace kiln::engine
