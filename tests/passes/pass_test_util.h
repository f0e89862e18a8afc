// What the pass tests share: random and integer constants, a graph under construction (TestNet),
// running a graph on the CPU reference executor (its outputs flattened, float32), counting ops,
// and relative L2 error.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/executor.h"

namespace kiln::passes {

inline Tensor random_tensor(std::vector<int64_t> dims, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  Tensor t = Tensor::zeros(DataType::kFloat32, std::move(dims)).value();
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = u(rng);
  return t;
}

inline Tensor ints(std::vector<int64_t> v, std::vector<int64_t> dims) {
  Tensor t = Tensor::zeros(DataType::kInt64, std::move(dims)).value();
  for (size_t i = 0; i < v.size(); ++i) t.mutable_data<int64_t>()[i] = v[i];
  return t;
}

inline Tensor scalar(float v) {
  Tensor t = Tensor::zeros(DataType::kFloat32, {}).value();
  t.mutable_data<float>()[0] = v;
  return t;
}

// A graph under construction: graph inputs, nodes that make new values by name, constants.
// Each test's Net derives from it and adds its own pattern builders.
struct TestNet {
  Graph g;
  int consts = 0;
  explicit TestNet(int64_t opset = 17) { g.opsets[""] = opset; }
  Value* input(const std::string& name, Shape shape, DataType t = DataType::kFloat32) {
    Value* x = *g.add_value(name, t, std::move(shape));
    x->is_graph_input = true;
    g.inputs.push_back(x);
    return x;
  }
  // op(in) -> a new value `out`, the node named out + "_node"; opset 0: 17 (1 in a custom domain).
  Node* add(const char* op, std::vector<Value*> in, const std::string& out, const char* domain = "", int64_t opset = 0) {
    auto n = std::make_unique<Node>();
    n->name = out + "_node";
    n->op_type = op;
    n->domain = domain;
    n->opset = opset ? opset : *domain ? 1 : 17;
    n->inputs = std::move(in);
    n->outputs = {*g.add_value(out)};
    return g.add_node(std::move(n));
  }
  Value* c(Tensor t) { return *g.add_initializer("c" + std::to_string(consts++), std::move(t)); }
  Value* c(float v) { return c(scalar(v)); }
  Value* v(const std::string& name) { return g.find_value(name); }
};

// Every output of g on `in`, float32, one after the other.
inline std::vector<float> run(const Graph& g, const std::map<std::string, Tensor>& in) {
  auto ex = cpu::Executor::create(g);
  EXPECT_TRUE(ex.is_ok()) << ex.status().message();
  if (!ex) return {};
  auto out = (*ex)->run(in);
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  std::vector<float> all;
  if (!out) return all;
  for (const Tensor& t : *out) all.insert(all.end(), t.data<float>(), t.data<float>() + t.numel());
  return all;
}

// Graphs with one input named "x".
inline std::vector<float> run(const Graph& g, const Tensor& x) { return run(g, {{"x", x}}); }

inline int count(const Graph& g, const char* op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op_type == op;
  return n;
}

inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace kiln::passes
