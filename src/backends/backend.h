// The contract between the engine runtime and a backend. A BackendEngine is made once per
// loaded engine (weights placed once); each ExecutionContext owns a BackendContext (its
// activation memory, library handles). Backends never include each other.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

// Concrete shapes of the graph's values for one set of input shapes, and the values of the
// small integer tensors the host evaluated on the way (shape arithmetic): computed at
// setInputShape, never per inference.
struct ValueShapes {
  std::map<const Value*, std::vector<int64_t>> dims;
  std::map<const Value*, Tensor> values;
};

// Whether a backend runs a node, and if not, why (printed in reports).
struct Support {
  bool ok = true;
  std::string reason;
  static Support yes() { return {}; }
  static Support no(std::string why) { return {false, std::move(why)}; }
};

// Receives each layer's time in a profiled run.
class LayerTimer {
 public:
  virtual ~LayerTimer() = default;
  virtual void layer_time(const Node& node, float ms) = 0;
};

// Gives memory for an output whose size the reported shapes did not fix (data-dependent
// outputs: NonZero, or a Reshape target read from an input); returns where to write it.
using OutputSink =
    std::function<Expected<void*>(const Value& output, const std::vector<int64_t>& dims, size_t bytes)>;

class BackendContext {
 public:
  virtual ~BackendContext() = default;
  // Called whenever the input shapes change: sizes and lays out activation memory.
  virtual Status prepare(const ValueShapes& shapes) = 0;
  // Runs the graph. `io` maps graph input/output names to the caller's buffers (host memory on
  // the CPU backend, device memory on CUDA); `stream` is a cudaStream_t or null.
  virtual Status enqueue(const std::map<std::string, void*>& io, void* stream, LayerTimer* timer,
                         const OutputSink& sink) = 0;
  // Activation bytes this context holds for the prepared shapes.
  virtual uint64_t arena_bytes() const = 0;
};

class BackendEngine {
 public:
  virtual ~BackendEngine() = default;
  virtual Expected<std::unique_ptr<BackendContext>> create_context() = 0;
};

// The tactic of a layer the builder assigned to the CPU inside another backend's engine (that
// backend has no kernel for it, or its check() refused): the layer runs on the host through
// the HostLayerFn the engine hands the backend, with its inputs copied in and outputs out.
constexpr const char* kHostFallbackTactic = "cpu.fallback";

// Runs one layer on the host: the CPU backend's kernels, handed to other backends by the engine
// (backends never include each other). `scope` holds the outer values a subgraph-carrying layer
// (If, Loop, Scan) reads, in the order of Node::implicit_inputs(); empty for other layers.
using HostLayerFn = std::function<Expected<std::vector<Tensor>>(
    const Node& node, const std::vector<const Tensor*>& inputs, const std::vector<const Tensor*>& scope)>;

}  // namespace kiln
