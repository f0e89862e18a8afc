// Regressions of the bugs the fuzz targets (tests/fuzz) found, as plain unit tests, so every
// build checks them, not only the sanitizer build that replays the crash inputs:
//   - an attribute holding an empty list saved into an engine that then would not load;
//   - names that are not UTF-8 (ONNX allows any bytes) saved into an engine that would not load;
//   - an engine whose profile gives min/opt/max of different ranks read past a vector in
//     setInputShape; it must be refused at load;
//   - a graph input with an empty name (which means "no value") was imported;
//   - a tensor of 2^40 elements was left to the allocator instead of refused by its size, and
//     constant folding materialized any constant, however large, at build time.
#include <gtest/gtest.h>

#include <cstring>

#include "backends/cpu/executor.h"
#include "engine/engine_file.h"
#include "onnx/importer.h"
#include "onnx/onnx_pb.h"
#include "passes/pipeline.h"

namespace kiln {
namespace {

// x[2] -> Identity -> y[2], with `attrs` on the node and `x_name` for the input.
engine::EngineModel identity_model(std::map<std::string, AttrValue> attrs, const std::string& x_name = "x") {
  engine::EngineModel m;
  m.graph = std::make_unique<Graph>();
  Graph& g = *m.graph;
  g.opsets[""] = 17;
  Value* x = g.add_value(x_name, DataType::kFloat32, Shape({Dim(2)})).value();
  x->is_graph_input = true;
  g.inputs.push_back(x);
  Value* y = g.add_value("y", DataType::kFloat32, Shape({Dim(2)})).value();
  auto n = std::make_unique<Node>();
  n->name = "id";
  n->op_type = "Identity";
  n->opset = 17;
  n->inputs = {x};
  n->outputs = {y};
  n->attrs = std::move(attrs);
  g.add_node(std::move(n));
  g.outputs.push_back(y);
  m.tactics = {"cpu.reference.Identity"};
  m.precisions = {"float32"};
  m.profiles = {{{x_name, {2}, {2}, {2}}}};
  return m;
}

Expected<engine::EngineModel> round_trip(const engine::EngineModel& m) {
  auto bytes = engine::serialize(m);
  if (!bytes) return bytes.status();
  auto copy = std::make_shared<std::string>(std::move(bytes).value());
  std::shared_ptr<const std::byte> data(copy, reinterpret_cast<const std::byte*>(copy->data()));
  return engine::deserialize(data, copy->size());
}

TEST(FuzzRegressions, EmptyListAttributesSurviveTheEngineFile) {
  auto loaded = round_trip(identity_model({{"ints", std::vector<int64_t>{}},
                                           {"floats", std::vector<float>{}},
                                           {"strings", std::vector<std::string>{}},
                                           {"tensors", std::vector<Tensor>{}}}));
  ASSERT_TRUE(loaded) << loaded.status().message();
  const Node& n = *loaded->graph->nodes().at(0);
  EXPECT_TRUE(std::holds_alternative<std::vector<int64_t>>(n.attrs.at("ints")));
  EXPECT_TRUE(std::holds_alternative<std::vector<float>>(n.attrs.at("floats")));
  EXPECT_TRUE(std::holds_alternative<std::vector<std::string>>(n.attrs.at("strings")));
  EXPECT_TRUE(std::holds_alternative<std::vector<Tensor>>(n.attrs.at("tensors")));
}

TEST(FuzzRegressions, NamesThatAreNotUtf8SurviveTheEngineFile) {
  const std::string bad = "x\xff\xfe";
  engine::EngineModel m = identity_model({{"a\xc0", int64_t(1)}}, bad);
  m.graph->opsets["dom\xff"] = 1;
  auto loaded = round_trip(m);
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(loaded->graph->inputs.at(0)->name, bad);
  EXPECT_TRUE(loaded->graph->nodes().at(0)->has_attr("a\xc0"));
  EXPECT_EQ(loaded->graph->opsets.at("dom\xff"), 1);
}

TEST(FuzzRegressions, ProfilesOfMixedRanksOrOrderAreRefusedAtLoad) {
  engine::EngineModel m = identity_model({});
  m.profiles = {{{"x", {2}, {2}, {}}}};
  auto loaded = round_trip(m);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.status().message().find("different ranks"), std::string::npos) << loaded.status().message();

  m.profiles = {{{"x", {3}, {2}, {4}}}};
  loaded = round_trip(m);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.status().message().find("min <= opt <= max"), std::string::npos) << loaded.status().message();

  m.profiles = {{{"nope", {2}, {2}, {2}}}};
  EXPECT_FALSE(round_trip(m));
}

TEST(FuzzRegressions, GraphInputWithAnEmptyNameIsRefused) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  auto* out = g->add_output();
  out->set_name("y");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  auto* n = g->add_node();
  n->set_op_type("Identity");
  n->add_input("");
  n->add_output("y");
  auto r = onnx_import::import_bytes(m.SerializeAsString(), "");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("empty name"), std::string::npos) << r.status().message();
}

TEST(FuzzRegressions, TensorLargerThanMemoryIsRefusedBySize) {
  auto t = Tensor::zeros(DataType::kFloat32, {int64_t(1) << 40});
  ASSERT_FALSE(t);
  EXPECT_NE(t.status().message().find("more than this machine's memory"), std::string::npos) << t.status().message();
}

// Adds out = op(in) (opset 17) to g as its output and runs fold_constants on the CPU evaluator.
Status fold_one_node(Graph& g, const char* op, Value* in, Value* out, passes::PassContext& ctx) {
  auto n = std::make_unique<Node>();
  n->name = std::string(op) + "_node";
  n->op_type = op;
  n->opset = 17;
  n->inputs = {in};
  n->outputs = {out};
  g.add_node(std::move(n));
  g.outputs.push_back(out);
  ctx.evaluate = cpu::run_node;
  return passes::fold_constants(g, ctx);
}

TEST(FuzzRegressions, HugeConstantsAreNotFolded) {
  // c = ConstantOfShape([2^40]) (4 TiB of float32) stays a node; s = Shape(w) still folds.
  Graph g;
  g.opsets[""] = 17;
  Value* shape = g.add_initializer("shape", Tensor::from_vector<int64_t>({1}, {int64_t(1) << 40})).value();
  Value* c = g.add_value("c", DataType::kFloat32, Shape({Dim(int64_t(1) << 40)})).value();
  passes::PassContext ctx;
  ASSERT_TRUE(fold_one_node(g, "ConstantOfShape", shape, c, ctx));
  EXPECT_EQ(c->initializer, nullptr);
  EXPECT_EQ(ctx.counters["fold_constants.too_large"], 1);
}

TEST(FuzzRegressions, BigConstantsThatDoNotGrowAreFolded) {
  // t = Transpose(w) of a 72 MiB weight (over the 64 MiB bound, but no larger than its input, as
  // GPT-2's tied embedding read as the output projection) folds; the values are transposed.
  Graph g;
  g.opsets[""] = 17;
  const int64_t rows = 3, cols = (int64_t(72) << 20) / 4 / rows;
  std::vector<float> w(rows * cols);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i % 1009) - 500.f;
  Value* wv = g.add_initializer("w", Tensor::from_vector<float>({rows, cols}, w)).value();
  Value* t = g.add_value("t", DataType::kFloat32, Shape({Dim(cols), Dim(rows)})).value();
  passes::PassContext ctx;
  ASSERT_TRUE(fold_one_node(g, "Transpose", wv, t, ctx));
  ASSERT_NE(t->initializer, nullptr);
  EXPECT_EQ(ctx.counters["fold_constants.too_large"], 0);
  const float* out = t->initializer->data<float>();
  for (int64_t i : {int64_t(0), int64_t(1), cols / 2, cols - 1})
    for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(out[i * rows + r], w[r * cols + i]) << i << "," << r;
}

}  // namespace
}  // namespace kiln
