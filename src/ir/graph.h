// The graph IR: Values (typed, shaped, SSA), Nodes (op type, domain, opset, typed attributes)
// and the Graph that owns them in topological order. ONNX semantics are the IR semantics.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/shape.h"
#include "ir/tensor.h"

namespace kiln {

class Graph;
class Node;

// An SSA value: produced by exactly one node, or a graph input, or an initializer.
struct Value {
  std::string name;
  DataType dtype = DataType::kUndefined;
  Shape shape = Shape::unknown_rank();
  Node* producer = nullptr;        // null for graph inputs and initializers
  const Tensor* initializer = nullptr;  // owned by the Graph; read-only
  bool is_graph_input = false;
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

  // Creates a value; the name must be new in this graph.
  Expected<Value*> add_value(const std::string& name, DataType dtype = DataType::kUndefined,
                             Shape shape = Shape::unknown_rank());
  // Creates a value holding a constant tensor (an initializer), stored once.
  Expected<Value*> add_initializer(const std::string& name, Tensor tensor);
  // Turns a node output into a constant (constant folding): the value keeps its name and
  // readers, loses its producer.
  Status make_constant(Value* v, Tensor tensor);
  Value* find_value(const std::string& name) const;
  // Appends a node; callers keep nodes in topological order (verify() checks it).
  Node* add_node(std::unique_ptr<Node> node);

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  std::vector<std::unique_ptr<Node>>& mutable_nodes() { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }
  size_t num_initializers() const { return initializers_.size(); }

  // SSA, topological order, every input defined, every output produced.
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
