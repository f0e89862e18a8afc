// Runs a Graph on the CPU, node by node in graph order: the reference every other backend is
// checked against. Each node: shape inference on the concrete inputs, output allocation, the
// kernel, then a check that the kernel produced what inference promised. Intermediate tensors
// are released after their last use.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::cpu {

class Executor {
 public:
  // Fails listing every (domain, op, opset) without a schema or kernel, with its first node.
  static Expected<std::unique_ptr<Executor>> create(const Graph& graph);
  // `inputs` by graph input name; returns the graph outputs in order.
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs) const;

 private:
  explicit Executor(const Graph& graph) : graph_(graph) {}
  const Graph& graph_;
  std::vector<size_t> last_use_;  // per node: values whose last reader it is (computed in create)
  std::map<const Value*, size_t> last_reader_;
};

// Lists unsupported (op, domain, opset) with the first node of each; empty if all supported.
std::vector<std::string> unsupported_ops(const Graph& graph);

}  // namespace kiln::cpu
