// Runs a Graph on the CPU, node by node in graph order: the reference every other backend is
// checked against. Each node: shape inference on the concrete inputs, output allocation, the
// kernel, then a check that the kernel produced what inference promised. Intermediate tensors
// are released after their last use.
//
// Subgraphs (If/Loop/Scan bodies, see graph.h): the values a node's subgraphs capture from the
// enclosing graph are the node's implicit inputs. The executor keeps them alive until the node
// has run and hands their tensors to the kernel (KernelContext::implicit_input), which runs the
// body with a nested Executor through run_subgraph(), binding the body's inputs and captures.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "ir/graph.h"

namespace kiln::cpu {

class Executor {
 public:
  // Fails listing every (domain, op, opset) without a schema or kernel, with its first node.
  // `gemm` (optional, one per node of graph.nodes()): the GEMM each layer's tactic runs.
  static Expected<std::unique_ptr<Executor>> create(const Graph& graph, std::vector<GemmEngine> gemm = {});
  // Called after each node with its wall time (the per-layer profile).
  using NodeObserver = std::function<void(const Node&, double ms)>;
  // Called with each graph input and each node output as it is computed (INT8 calibration
  // collects its statistics through it).
  using ValueObserver = std::function<void(const Value&, const Tensor&)>;
  // `inputs` by graph input name; returns the graph outputs in order. Thread-safe: any number
  // of runs may share one Executor.
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs,
                                    const NodeObserver& observer = nullptr,
                                    const ValueObserver& value_observer = nullptr) const;
  // Runs a subgraph: `inputs` in the order of graph.inputs, `captures` in the order of
  // graph.captures (the enclosing-scope tensors it reads).
  Expected<std::vector<Tensor>> run_subgraph(const std::vector<Tensor>& inputs,
                                             const std::vector<const Tensor*>& captures) const;

 private:
  explicit Executor(const Graph& graph) : graph_(graph) {}
  Expected<std::vector<Tensor>> execute(std::map<const Value*, Tensor> env, const NodeObserver& observer,
                                        const ValueObserver& value_observer = nullptr) const;
  const Graph& graph_;
  std::map<const Value*, size_t> last_reader_;
  std::vector<GemmEngine> gemm_;
};

// Runs one node on concrete inputs (null for omitted optional ones): shape inference, output
// allocation, the kernel, and a check of what it produced. Used by the executor, constant
// folding and host-side shape evaluation.
Expected<std::vector<Tensor>> run_node(const Node& node, const std::vector<const Tensor*>& inputs);
// The same for a node with subgraphs: `implicit_inputs` are the tensors of
// node.implicit_inputs(), in that order (the enclosing-scope values its subgraphs read).
Expected<std::vector<Tensor>> run_node_in_scope(const Node& node, const std::vector<const Tensor*>& inputs,
                                                const std::vector<const Tensor*>& implicit_inputs,
                                                GemmEngine gemm = GemmEngine::kBlas);

// Lists unsupported (op, domain, opset) with the first node of each, subgraphs included; empty
// if all are supported.
std::vector<std::string> unsupported_ops(const Graph& graph);

}  // namespace kiln::cpu
