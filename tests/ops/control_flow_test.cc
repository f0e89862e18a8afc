// If, Loop and Scan on hand-built graphs with subgraphs (captures of outer values, nesting,
// zero-trip loops, scan directions), and the importer's handling of subgraph scopes.
#include "tests/ops/op_test.h"

#include "onnx/importer.h"
#include "onnx/onnx_pb.h"

namespace kiln::testing {

namespace {

template <class T>
Tensor vec(std::vector<int64_t> dims, std::vector<T> v) { return Tensor::from_vector<T>(std::move(dims), v); }

// Builds a graph by hand: inputs, captures of an enclosing graph's values, nodes, outputs.
struct Builder {
  std::shared_ptr<Graph> g = std::make_shared<Graph>();
  explicit Builder(const std::string& name) { g->name = name; g->opsets[""] = 17; }

  Value* input(const std::string& name, DataType t, Shape s) {
    Value* v = g->add_value(name, t, std::move(s)).value();
    v->is_graph_input = true;
    g->inputs.push_back(v);
    return v;
  }
  Value* capture(Value* outer) { return g->add_capture(outer).value(); }
  Value* constant(const std::string& name, Tensor t) { return g->add_initializer(name, std::move(t)).value(); }
  Node* node(const std::string& op, std::vector<Value*> ins, std::vector<std::string> outs,
             std::map<std::string, AttrValue> attrs = {}) {
    auto n = std::make_unique<Node>();
    n->name = op + "_" + std::to_string(g->nodes().size());
    n->op_type = op;
    n->opset = 17;
    n->inputs = std::move(ins);
    n->attrs = std::move(attrs);
    for (const auto& o : outs) n->outputs.push_back(o.empty() ? nullptr : g->add_value(o).value());
    return g->add_node(std::move(n));
  }
  Value* out(Node* n, size_t i = 0) { return n->outputs[i]; }
};

Expected<std::vector<Tensor>> run(Graph& g, const std::map<std::string, Tensor>& feeds) {
  KILN_RETURN_IF_ERROR(g.verify());
  KILN_RETURN_IF_ERROR(infer_graph(g));
  KILN_ASSIGN_OR_RETURN(auto ex, cpu::Executor::create(g));
  return ex->run(feeds);
}

std::vector<Tensor> ok(Graph& g, const std::map<std::string, Tensor>& feeds) {
  auto y = run(g, feeds);
  EXPECT_TRUE(y.is_ok()) << y.status().message();
  return y.is_ok() ? *y : std::vector<Tensor>(g.outputs.size());
}

// main(cond, x): t = Neg(x); u = Neg(t); y = If(cond) { then: t + t } else { x }.
// t's last explicit reader runs before the If, so only its capture keeps it alive.
std::unique_ptr<Builder> if_model() {
  auto m = std::make_unique<Builder>("main");
  Value* cond = m->input("cond", DataType::kBool, Shape{});
  Value* x = m->input("x", DataType::kFloat32, Shape{3});
  Value* t = m->out(m->node("Neg", {x}, {"t"}));
  Value* u = m->out(m->node("Neg", {t}, {"u"}));
  Builder then_b("then"), else_b("else");
  Value* tc = then_b.capture(t);
  then_b.g->outputs.push_back(then_b.out(then_b.node("Add", {tc, tc}, {"twice"})));
  else_b.g->outputs.push_back(else_b.capture(x));  // a branch may return an outer value as is
  Node* n = m->node("If", {cond}, {"y"}, {{"then_branch", then_b.g}, {"else_branch", else_b.g}});
  m->g->outputs = {n->outputs[0], u};
  return m;
}

}  // namespace

TEST(ControlFlow, IfPicksTheBranchAndReadsOuterValues) {
  auto m = if_model();
  Tensor x = vec<float>({3}, {1, 2, 3});
  auto y = ok(*m->g, {{"cond", Tensor::scalar<bool>(true)}, {"x", x}});
  EXPECT_TRUE(tensors_near(y[0], vec<float>({3}, {-2, -4, -6})));
  y = ok(*m->g, {{"cond", Tensor::scalar<bool>(false)}, {"x", x}});
  EXPECT_TRUE(tensors_near(y[0], x));
  EXPECT_EQ(m->g->find_value("y")->dtype, DataType::kFloat32);
  EXPECT_EQ(m->g->find_value("y")->shape.to_string(), "[3]");
}

TEST(ControlFlow, IfRejectsBranchesOfDifferentTypes) {
  auto m = if_model();
  const Graph* else_g = m->g->nodes().back()->attr_graph("else_branch");
  Graph* mutable_else = const_cast<Graph*>(else_g);
  mutable_else->outputs[0] = mutable_else->add_initializer("seven", Tensor::scalar<int32_t>(7)).value();
  auto y = run(*m->g, {});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("float in then_branch but int32 in else_branch"), std::string::npos)
      << y.status().message();
}

// Loop(M, cond, v0): body(i, c, v) = (c, v + step, v + step) with `step` captured: after M trips
// v = v0 + M * step and the scan output stacks every intermediate v.
std::unique_ptr<Builder> loop_model() {
  auto m = std::make_unique<Builder>("main");
  Value* trips = m->input("M", DataType::kInt64, Shape{});
  Value* cond = m->input("cond", DataType::kBool, Shape{});
  Value* v0 = m->input("v0", DataType::kFloat32, Shape{1});
  Value* step = m->input("step", DataType::kFloat32, Shape{1});
  Builder body("body");
  body.input("i", DataType::kInt64, Shape{});
  Value* c = body.input("c", DataType::kBool, Shape{});
  Value* v = body.input("v", DataType::kFloat32, Shape{1});
  Value* next = body.out(body.node("Add", {v, body.capture(step)}, {"next"}));
  body.g->outputs = {c, next, next};
  Node* n = m->node("Loop", {trips, cond, v0}, {"v_final", "vs"}, {{"body", body.g}});
  m->g->outputs = n->outputs;
  return m;
}

TEST(ControlFlow, LoopCarriesACounterAndStacksAScanOutput) {
  auto m = loop_model();
  auto y = ok(*m->g, {{"M", Tensor::scalar<int64_t>(4)}, {"cond", Tensor::scalar<bool>(true)},
                      {"v0", vec<float>({1}, {10})}, {"step", vec<float>({1}, {0.5f})}});
  EXPECT_TRUE(tensors_near(y[0], vec<float>({1}, {12})));
  EXPECT_TRUE(tensors_near(y[1], vec<float>({4, 1}, {10.5f, 11, 11.5f, 12})));
  EXPECT_EQ(m->g->find_value("vs")->shape.to_string(), "[?,1]");
}

TEST(ControlFlow, LoopOfZeroTripsReturnsTheStartAndAnEmptyScan) {
  auto m = loop_model();
  auto y = ok(*m->g, {{"M", Tensor::scalar<int64_t>(3)}, {"cond", Tensor::scalar<bool>(false)},
                      {"v0", vec<float>({1}, {7})}, {"step", vec<float>({1}, {1})}});
  EXPECT_TRUE(tensors_near(y[0], vec<float>({1}, {7})));
  EXPECT_EQ(y[1].dims(), (std::vector<int64_t>{0, 1}));
}

TEST(ControlFlow, LoopWithoutTripCountOrConditionIsRefused) {
  auto m = loop_model();
  Node* loop = m->g->mutable_nodes().back().get();
  loop->inputs[0] = loop->inputs[1] = nullptr;
  auto y = run(*m->g, {{"M", Tensor::scalar<int64_t>(1)}, {"cond", Tensor::scalar<bool>(true)},
                       {"v0", vec<float>({1}, {7})}, {"step", vec<float>({1}, {1})}});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("never end"), std::string::npos) << y.status().message();
}

// A Loop whose body holds an If that reads a top-level value: the capture goes through the body.
TEST(ControlFlow, NestedSubgraphsCaptureThroughEveryLevel) {
  Builder m("main");
  Value* trips = m.input("M", DataType::kInt64, Shape{});
  Value* v0 = m.input("v0", DataType::kFloat32, Shape{1});
  Value* k = m.input("k", DataType::kFloat32, Shape{1});
  Builder body("body");
  body.input("i", DataType::kInt64, Shape{});
  Value* c = body.input("c", DataType::kBool, Shape{});
  Value* v = body.input("v", DataType::kFloat32, Shape{1});
  Value* k_body = body.capture(k);
  Builder then_b("then"), else_b("else");
  then_b.g->outputs = {then_b.out(then_b.node("Mul", {then_b.capture(v), then_b.capture(k_body)}, {"scaled"}))};
  else_b.g->outputs = {else_b.capture(v)};
  Value* next = body.out(body.node("If", {c}, {"next"}, {{"then_branch", then_b.g}, {"else_branch", else_b.g}}));
  body.g->outputs = {c, next};
  Node* n = m.node("Loop", {trips, nullptr, v0}, {"v_final"}, {{"body", body.g}});
  m.g->outputs = n->outputs;
  auto y = ok(*m.g, {{"M", Tensor::scalar<int64_t>(3)}, {"v0", vec<float>({1}, {1})}, {"k", vec<float>({1}, {2})}});
  EXPECT_TRUE(tensors_near(y[0], vec<float>({1}, {8})));
}

// Scan(state, x): body(sum, row) = (sum + row, sum + row): running sums of x's rows.
std::unique_ptr<Builder> scan_model(std::map<std::string, AttrValue> attrs) {
  auto m = std::make_unique<Builder>("main");
  Value* init = m->input("init", DataType::kFloat32, Shape{2});
  Value* x = m->input("x", DataType::kFloat32, Shape{3, 2});
  Builder body("body");
  Value* sum = body.input("sum", DataType::kFloat32, Shape{2});
  Value* row = body.input("row", DataType::kFloat32, Shape{2});
  Value* next = body.out(body.node("Add", {sum, row}, {"next"}));
  body.g->outputs = {next, next};
  attrs["body"] = body.g;
  attrs["num_scan_inputs"] = int64_t(1);
  Node* n = m->node("Scan", {init, x}, {"total", "sums"}, std::move(attrs));
  m->g->outputs = n->outputs;
  return m;
}

TEST(ControlFlow, ScanSumsRows) {
  auto m = scan_model({});
  auto y = ok(*m->g, {{"init", vec<float>({2}, {0, 0})}, {"x", vec<float>({3, 2}, {1, 2, 3, 4, 5, 6})}});
  EXPECT_TRUE(tensors_near(y[0], vec<float>({2}, {9, 12})));
  EXPECT_TRUE(tensors_near(y[1], vec<float>({3, 2}, {1, 2, 4, 6, 9, 12})));
  EXPECT_EQ(m->g->find_value("sums")->shape.to_string(), "[3,2]");
}

TEST(ControlFlow, ScanInReverseAndAlongOtherAxes) {
  auto m = scan_model({{"scan_input_directions", std::vector<int64_t>{1}},
                       {"scan_output_axes", std::vector<int64_t>{-1}},
                       {"scan_output_directions", std::vector<int64_t>{1}}});
  auto y = ok(*m->g, {{"init", vec<float>({2}, {0, 0})}, {"x", vec<float>({3, 2}, {1, 2, 3, 4, 5, 6})}});
  EXPECT_TRUE(tensors_near(y[0], vec<float>({2}, {9, 12})));
  // Sums of the reversed rows (5,6), (8,10), (9,12), stored last-first along the new last axis.
  EXPECT_TRUE(tensors_near(y[1], vec<float>({2, 3}, {9, 8, 5, 12, 10, 6})));
}

TEST(ControlFlowBadInput, LoopBodyWithTheWrongNumberOfOutputs) {
  auto m = loop_model();
  Graph* body = const_cast<Graph*>(m->g->nodes().back()->attr_graph("body"));
  body->outputs.pop_back();  // cond + 1 carried value, but the Loop has 1 carried + 1 scan output
  auto y = run(*m->g, {{"M", Tensor::scalar<int64_t>(2)}, {"cond", Tensor::scalar<bool>(true)},
                       {"v0", vec<float>({1}, {7})}, {"step", vec<float>({1}, {1})}});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("Loop_"), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find("output"), std::string::npos) << y.status().message();
}

TEST(ControlFlowBadInput, ScanWithMismatchedAxes) {
  auto m = scan_model({{"scan_input_axes", std::vector<int64_t>{0, 1}}});  // two axes, one scan input
  auto y = run(*m->g, {{"init", vec<float>({2}, {0, 0})}, {"x", vec<float>({3, 2}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("Scan_0"), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find("axes"), std::string::npos) << y.status().message();
}

TEST(ControlFlow, ScanRejectsBadAttributes) {
  auto m = scan_model({{"scan_input_directions", std::vector<int64_t>{2}}});
  auto y = run(*m->g, {});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("Scan_0"), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find("directions are 0 or 1"), std::string::npos) << y.status().message();
}

namespace {

void add_float_io(onnx::GraphProto* g, bool input, const std::string& name, std::vector<int64_t> dims) {
  auto* vi = input ? g->add_input() : g->add_output();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
}

// main(x): y = If(cond = true) { then: x + x } else { x }, with the branches reading x from main.
onnx::ModelProto if_onnx_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("main");
  add_float_io(g, true, "x", {2});
  add_float_io(g, false, "y", {2});
  auto* c = g->add_initializer();
  c->set_name("cond");
  c->set_data_type(onnx::TensorProto_DataType_BOOL);
  c->add_int32_data(1);
  auto* n = g->add_node();
  n->set_op_type("If");
  n->set_name("branch");
  n->add_input("cond");
  n->add_output("y");
  auto* then_a = n->add_attribute();
  then_a->set_name("then_branch");
  then_a->set_type(onnx::AttributeProto::GRAPH);
  auto* tg = then_a->mutable_g();
  tg->set_name("then");
  auto* add = tg->add_node();
  add->set_op_type("Add");
  add->set_name("double_x");
  add->add_input("x");
  add->add_input("x");
  add->add_output("twice");
  add_float_io(tg, false, "twice", {2});
  auto* else_a = n->add_attribute();
  else_a->set_name("else_branch");
  else_a->set_type(onnx::AttributeProto::GRAPH);
  else_a->mutable_g()->set_name("else");
  add_float_io(else_a->mutable_g(), false, "x", {2});
  return m;
}

}  // namespace

TEST(ControlFlowImport, SubgraphsReadEnclosingValues) {
  auto g = onnx_import::import_bytes(if_onnx_model().SerializeAsString(), "");
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  const Graph* then_g = (*g)->nodes()[0]->attr_graph("then_branch");
  ASSERT_EQ(then_g->captures.size(), 1u);
  EXPECT_EQ(then_g->captures[0].outer, (*g)->find_value("x"));
  auto ex = cpu::Executor::create(**g);
  ASSERT_TRUE(ex.is_ok()) << ex.status().message();
  auto y = (*ex)->run({{"x", vec<float>({2}, {1, 5})}});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], vec<float>({2}, {2, 10})));
}

TEST(ControlFlowImport, UndefinedNameInSubgraphNamesTheNodeAndTheName) {
  auto m = if_onnx_model();
  m.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g()->mutable_node(0)->set_input(1, "nope");
  auto g = onnx_import::import_bytes(m.SerializeAsString(), "");
  ASSERT_FALSE(g.is_ok());
  const std::string& e = g.status().message();
  EXPECT_NE(e.find("node 'branch' (If)"), std::string::npos) << e;
  EXPECT_NE(e.find("node 'double_x' (Add)"), std::string::npos) << e;
  EXPECT_NE(e.find("'nope' is not defined"), std::string::npos) << e;
}

TEST(ControlFlowImport, UnsupportedOpsInsideSubgraphsAreListed) {
  auto m = if_onnx_model();
  m.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g()->mutable_node(0)->set_op_type("NoSuchOp");
  auto g = onnx_import::import_bytes(m.SerializeAsString(), "");
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find("NoSuchOp"), std::string::npos) << g.status().message();
}

}  // namespace kiln::testing
