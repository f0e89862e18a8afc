// Per-layer precision constraints: TensorRT's ILayer::setPrecision / setOutputType under
// BuilderFlag kPREFER_PRECISION_CONSTRAINTS / kOBEY_PRECISION_CONSTRAINTS (trtexec's
// --layerPrecisions, --layerOutputTypes, --precisionConstraints).
//
// A constraint names a layer of the network as imported (its ONNX node name), a layer of the
// optimized graph as --exportLayerInfo prints it ("conv1+Add+Relu", "conv1/nhwc"), or "*" (every
// layer; a named constraint overrides it). A fused layer takes the constraints of the network
// layers folded into it: by name ("conv1+Add+Relu" starts with conv1's name) or by the output it
// took over (the Relu's); when they differ, the highest precision wins.
//
// What a precision means here: float32 keeps the layer out of --fp16's conversion and out of
// INT8; float16 keeps it out of INT8 (converted when --fp16); int8 asks for INT8 (Conv, MatMul,
// Gemm and their fused forms only). An output type float32 keeps the layer in float32; float16
// is --fp16's default. Under obey, a constraint kiln cannot honour fails the build; under
// prefer, a warning names it.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "kiln/types.h"

namespace kiln::engine {

enum class ConstraintMode { kNone, kPrefer, kObey };

struct LayerConstraint {
  DataType precision = DataType::kUndefined;  // kUndefined: no constraint on this layer
  std::string reason;                         // "--layerPrecisions conv1:fp32"
  bool named = false;                         // from a layer's name, not from "*"
};

class LayerPrecisions {
 public:
  // Checks the types against the build's flags (fp16 and int8 enabled or not) and records which
  // network layers the names denote. Errors: an unsupported type, a type whose builder flag is
  // off, constraints with the mode kNone.
  static Expected<LayerPrecisions> resolve(const Graph& network, const std::map<std::string, TensorType>& precisions,
                                           const std::map<std::string, TensorType>& output_types,
                                           ConstraintMode mode, bool fp16, bool int8);
  bool empty() const { return entries_.empty(); }
  ConstraintMode mode() const { return mode_; }
  // The constraint that applies to a layer of the optimized graph (the highest precision of those
  // that match it).
  LayerConstraint of(const Node& n) const;
  // After the passes: a name that matched no layer of the network nor of the optimized graph is
  // an error naming it.
  Status check_names(const Graph& optimized) const;

 private:
  struct Entry {
    std::string name;  // "*" for every layer
    DataType precision;
    std::string reason;
    std::set<std::string> outputs;  // the network layer's output names (empty for "*")
    bool in_network = false;
  };
  bool matches(const Entry& e, const Node& n) const;
  std::vector<Entry> entries_;
  ConstraintMode mode_ = ConstraintMode::kNone;
  std::vector<std::string> network_layers_;  // a few names, for the error message
  std::set<std::string> network_names_;
};

// "float32 (--layerPrecisions conv1:fp32)": how a constraint shows in --exportLayerInfo.
const char* precision_flag_name(DataType t);  // "fp32", "fp16", "int8"

}  // namespace kiln::engine
