// Runs one operator on the CPU backend, the way the op tables in tests/ops/ need it:
//   auto y = run_op("Relu", {x});                      // default opset 17, one output
//   auto r = run_op("TopK", {x, k}, {{"axis", int64_t(1)}}, 2, 11);
// The node goes through the same import-time inference and executor path as a model.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "backends/cpu/executor.h"
#include "ir/op_registry.h"

namespace kiln::testing {

inline Expected<std::vector<Tensor>> run_op(const std::string& op, const std::vector<Tensor>& inputs,
                                            std::map<std::string, AttrValue> attrs = {}, size_t num_outputs = 1,
                                            int opset = 17, const std::string& domain = "") {
  Graph g;
  g.opsets[domain] = opset;
  auto node = std::make_unique<Node>();
  node->name = op + "_under_test";
  node->op_type = op;
  node->domain = domain;
  node->opset = opset;
  node->attrs = std::move(attrs);
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) { node->inputs.push_back(nullptr); continue; }
    std::string name = "x" + std::to_string(i);
    KILN_ASSIGN_OR_RETURN(Value * v, g.add_value(name, inputs[i].dtype(), inputs[i].shape()));
    v->is_graph_input = true;
    g.inputs.push_back(v);
    node->inputs.push_back(v);
    feeds[name] = inputs[i];
  }
  for (size_t i = 0; i < num_outputs; ++i) {
    KILN_ASSIGN_OR_RETURN(Value * v, g.add_value("y" + std::to_string(i)));
    node->outputs.push_back(v);
    g.outputs.push_back(v);
  }
  g.add_node(std::move(node));
  KILN_RETURN_IF_ERROR(g.verify());
  KILN_RETURN_IF_ERROR(infer_graph(g));
  KILN_ASSIGN_OR_RETURN(auto ex, cpu::Executor::create(g));
  return ex->run(feeds);
}

// Element-wise comparison with a tolerance; prints the first mismatch.
inline ::testing::AssertionResult tensors_near(const Tensor& got, const Tensor& want, double tol = 1e-5) {
  if (got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << "type " << got.describe() << " vs " << want.describe();
  if (got.dims() != want.dims())
    return ::testing::AssertionFailure() << "shape " << got.describe() << " vs " << want.describe();
  for (int64_t i = 0; i < want.numel(); ++i) {
    double a = got.get_as_double(i), b = want.get_as_double(i);
    if ((std::isnan(a) && std::isnan(b)) || a == b) continue;  // a == b covers equal infinities
    if (!(std::fabs(a - b) <= tol * (1 + std::fabs(b))))
      return ::testing::AssertionFailure() << "element " << i << ": got " << a << ", want " << b;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::testing
