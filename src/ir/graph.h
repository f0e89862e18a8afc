// The graph IR: Values (typed, shaped, SSA), Nodes (op type, domain, opset, typed attributes)
// and the Graph that owns them in topological order. ONNX semantics are the IR semantics.
//
// Subgraphs, scopes and captures. Control-flow nodes (If, Loop, Scan) hold their bodies as
// Graph attributes. A subgraph has its own values, nodes, inputs and outputs, and may also read
// values of the graph that holds the node (its enclosing scope), as ONNX's lexical scoping
// allows. Each such read is a *capture*: the subgraph owns a proxy Value (is_capture, same name)
// that stands for the outer value inside it, and Graph::captures pairs the two. A capture always
// refers to the *immediately* enclosing graph: a body nested two levels deep that reads a
// top-level value captures it in the middle graph too, so every graph only ever looks one level
// out. To the enclosing graph, the captured outer values are *implicit inputs* of the node
// (Node::implicit_inputs): they must be defined before it and stay alive until it has run.
// Whoever runs a subgraph binds its inputs and, for each capture, the outer value's tensor.
#pragma once
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/shape.h"
#include "ir/tensor.h"

namespace kiln {

class Graph;
class MappedFile;
class Node;

// An SSA value: produced by exactly one node, or a graph input, or an initializer.
struct Value {
  std::string name;
  DataType dtype = DataType::kUndefined;
  Shape shape = Shape::unknown_rank();
  Node* producer = nullptr;        // null for graph inputs and initializers
  const Tensor* initializer = nullptr;  // owned by the Graph; read-only
  bool is_graph_input = false;
  // A subgraph's proxy for a value of the enclosing graph (see Graph::captures). When the outer
  // value is an initializer, `initializer` points at the same tensor.
  bool is_capture = false;
  // What shape inference knows of a small 1-D or scalar integer tensor's elements when it is not a
  // constant: a shape tensor built by Shape/Gather/Concat/Mul... ("batch", 12, -1; see
  // InferContext::input_dims_value). Empty when nothing is known.
  std::optional<std::vector<Dim>> dims_value;
};

using AttrValue = std::variant<int64_t, float, std::string, Tensor, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>,
                               std::shared_ptr<Graph>, std::vector<Tensor>>;

class Node {
 public:
  std::string name;
  std::string op_type;
  std::string domain;   // "" is the default ONNX domain ("ai.onnx")
  int opset = 0;        // the model's opset version for `domain`
  std::vector<Value*> inputs;   // nullptr marks an omitted optional input
  std::vector<Value*> outputs;  // nullptr marks an omitted optional output
  std::map<std::string, AttrValue> attrs;

  // "node 'conv1' (Conv)": the prefix every error about this node starts with.
  std::string label() const;
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  bool has_output(size_t i) const { return i < outputs.size() && outputs[i] != nullptr; }
  bool has_attr(const std::string& key) const { return attrs.count(key) != 0; }

  // Typed attribute reads with a default when absent.
  int64_t attr_int(const std::string& key, int64_t def) const;
  float attr_float(const std::string& key, float def) const;
  std::string attr_string(const std::string& key, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> def = {}) const;
  std::vector<float> attr_floats(const std::string& key, std::vector<float> def = {}) const;
  std::vector<std::string> attr_strings(const std::string& key) const;
  const Tensor* attr_tensor(const std::string& key) const;
  const Graph* attr_graph(const std::string& key) const;
  // The subgraphs held in attributes (If's branches, Loop's and Scan's bodies), in key order.
  std::vector<const Graph*> subgraphs() const;
  // The enclosing-scope values this node's subgraphs read (their captures' outer values), each
  // once, in a stable order: inputs the node depends on without listing them in `inputs`.
  std::vector<Value*> implicit_inputs() const;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  std::string name;
  std::map<std::string, int> opsets;  // domain -> version ("" = ai.onnx)
  std::vector<Value*> inputs;         // graph inputs that are not initializers, in order
  std::vector<Value*> outputs;
  // Subgraphs only: the values of the enclosing graph read here, each bound to its proxy.
  struct Capture {
    Value* outer;  // a value of the enclosing graph
    Value* inner;  // its proxy in this graph (is_capture)
  };
  std::vector<Capture> captures;
  // Files whose mapped bytes initializers alias (external data): the builder checks that none
  // changed size before it reads them (a file truncated under a mapping raises SIGBUS).
  std::vector<std::shared_ptr<const MappedFile>> mapped_files;

  // Creates a value; the name must be new in this graph.
  Expected<Value*> add_value(const std::string& name, DataType dtype = DataType::kUndefined,
                             Shape shape = Shape::unknown_rank());
  // Creates a value holding a constant tensor (an initializer), stored once.
  Expected<Value*> add_initializer(const std::string& name, Tensor tensor);
  // Turns a node output into a constant (constant folding): the value keeps its name and
  // readers, loses its producer.
  Status make_constant(Value* v, Tensor tensor);
  Value* find_value(const std::string& name) const;
  // Makes `outer` (a value of the enclosing graph) readable here: adds its proxy and a Capture.
  Expected<Value*> add_capture(Value* outer);
  // Appends a node; callers keep nodes in topological order (verify() checks it).
  Node* add_node(std::unique_ptr<Node> node);

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  std::vector<std::unique_ptr<Node>>& mutable_nodes() { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }
  size_t num_initializers() const { return initializers_.size(); }

  // SSA, topological order, every input defined, every output produced; subgraphs too, with
  // each node's implicit inputs defined before it.
  Status verify() const;

 private:
  std::vector<std::unique_ptr<Value>> values_;
  std::unordered_map<std::string, Value*> by_name_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Tensor>> initializers_;
};

// One line per node: "%y:float[1,64] = Conv(%x, %w) {kernel_shape=[3,3]}".
std::string print_graph(const Graph& g);

}  // namespace kiln
