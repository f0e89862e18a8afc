// The rewrite layer (passes/rewrite): matching with backtracking, captures, the interior rule,
// the fixpoint driver and its counters. Graphs from pass_test_util.h's TestNet.
#include "passes/rewrite/rewriter.h"

#include <gtest/gtest.h>

#include "tests/passes/pass_test_util.h"

namespace kiln::passes {
namespace {

using namespace rewrite;

Value* node(TestNet& t, const char* op, std::vector<Value*> in, const std::string& out) { return t.add(op, std::move(in), out)->outputs[0]; }

// Relu(Add(a, b)) -> one kiln.AddRelu node; the rule the tests below drive.
const Rule kAddRelu[] = {{"add_relu", op("Relu", {op("Add", {any().as("a"), any().as("b")}).as("add")}),
                          [](const Match& m, Rewriter& rw) {
                            rw.replace_root("AddRelu", "kiln", {m["a"], m["b"]});
                            return true;
                          }}};

TEST(Rewrite, FiresAndNamesAfterTheMatchedNodes) {
  TestNet t;
  Value* x = t.input("x", Shape({2, 3}));
  Value* y = t.input("y", Shape({2, 3}));
  Value* s = node(t, "Add", {x, y}, "s");
  t.g.outputs.push_back(node(t, "Relu", {s}, "r"));
  PassContext ctx;
  auto n = apply(t.g, ctx, "test", kAddRelu);
  ASSERT_TRUE(n) << n.status().message();
  EXPECT_EQ(*n, 1);
  ASSERT_EQ(t.g.nodes().size(), 1u);
  EXPECT_EQ(t.g.nodes()[0]->op_type, "AddRelu");
  EXPECT_EQ(t.g.nodes()[0]->name, "s_node+Relu");
  EXPECT_EQ(t.g.nodes()[0]->outputs[0]->producer, t.g.nodes()[0].get());
  EXPECT_EQ(ctx.counters["test.add_relu"], 1);
  EXPECT_TRUE(t.g.verify());
}

TEST(Rewrite, MustNotFireWhenAnInteriorValueIsReadOutside) {
  TestNet t;
  Value* x = t.input("x", Shape({2, 3}));
  Value* s = node(t, "Add", {x, x}, "s");
  t.g.outputs.push_back(node(t, "Relu", {s}, "r"));
  t.g.outputs.push_back(s);  // the Add's output is also a graph output
  PassContext ctx;
  EXPECT_EQ(*apply(t.g, ctx, "test", kAddRelu), 0);
  EXPECT_EQ(t.g.nodes().size(), 2u);
}

// A commutative op whose written order fails the interior rule matches in the other order
// (MobileNetV2's residual Add, whose first operand is also read by the next block).
TEST(Rewrite, CommutativeBacktracksPastTheInteriorRule) {
  TestNet t;
  Value* x = t.input("x", Shape({2, 3}));
  Value* y = t.input("y", Shape({2, 3}));
  Value* p = node(t, "Neg", {x}, "p");  // read twice: the Add and the Sigmoid
  Value* q = node(t, "Neg", {y}, "q");  // read once
  t.g.outputs.push_back(node(t, "Add", {p, q}, "s"));
  t.g.outputs.push_back(node(t, "Sigmoid", {p}, "side"));
  const Rule rules[] = {{"neg_add", op("Add", {op("Neg", {any().as("v")}), any().as("other")}).commutative(),
                         [](const Match& m, Rewriter& rw) {
                           rw.replace_root("Sub", "", {m["other"], m["v"]});
                           return true;
                         }}};
  PassContext ctx;
  EXPECT_EQ(*apply(t.g, ctx, "test", rules), 1);
  ASSERT_EQ(t.g.nodes().size(), 3u);  // p, the Sub, the Sigmoid: q went
  const Node* sub = t.g.nodes()[1].get();
  EXPECT_EQ(sub->op_type, "Sub");
  EXPECT_EQ(sub->inputs[0], p);
  EXPECT_EQ(sub->inputs[1], y);
  EXPECT_TRUE(t.g.verify());
}

// either() tries alternatives; a capture used twice must bind one value; scalar() compares values.
TEST(Rewrite, EitherCapturesAndScalars) {
  TestNet t;
  Value* x = t.input("x", Shape({4}));
  Value* h = node(t, "Mul", {x, t.c(0.5f)}, "h");
  t.g.outputs.push_back(node(t, "Mul", {h, x}, "y"));             // (x * 0.5) * x: same x twice
  Value* z = t.input("z", Shape({4}));
  Value* h2 = node(t, "Div", {z, t.c(2.0f)}, "h2");
  t.g.outputs.push_back(node(t, "Mul", {h2, t.input("w", Shape({4}))}, "y2"));  // (z / 2) * w: not the same value
  Pattern half = either({op("Mul", {any().as("v"), scalar(0.5)}), op("Div", {any().as("v"), scalar(2.0)})});
  const Rule rules[] = {{"half_square", op("Mul", {half, any().as("v")}), [](const Match& m, Rewriter& rw) {
                           rw.replace_root("HalfSquare", "kiln", {m["v"]});
                           return true;
                         }}};
  PassContext ctx;
  EXPECT_EQ(*apply(t.g, ctx, "test", rules), 1);
  int fused = 0;
  for (const auto& n : t.g.nodes()) fused += n->op_type == "HalfSquare" && n->inputs[0] == x;
  EXPECT_EQ(fused, 1);
}

// Rewrites that enable others run to a fixpoint: Neg(Neg(v)) -> v, three times over.
TEST(Rewrite, RunsToAFixpoint) {
  TestNet t;
  Value* v = t.input("x", Shape({3}));
  for (int i = 0; i < 6; ++i) v = node(t, "Neg", {v}, "n" + std::to_string(i));
  t.g.outputs.push_back(node(t, "Relu", {v}, "out"));
  const Rule rules[] = {{"neg_neg", op("Relu", {op("Neg", {op("Neg", {any().as("v")})})}),
                         [](const Match& m, Rewriter& rw) {
                           rw.replace_root("Relu", "", {m["v"]});
                           return true;
                         }}};
  PassContext ctx;
  EXPECT_EQ(*apply(t.g, ctx, "test", rules), 3);
  ASSERT_EQ(t.g.nodes().size(), 1u);
  EXPECT_EQ(t.g.nodes()[0]->inputs[0]->name, "x");
  EXPECT_EQ(ctx.counters["test.neg_neg"], 3);
}

// maybe() makes a node optional on the way; .attr() checks an attribute; absent() an omitted
// input; a .keep() subgraph is matched but stays (read elsewhere), and match_value() proves a
// value's computation without covering anything.
TEST(Rewrite, MaybeAttrAbsentKeepAndMatchValue) {
  TestNet t;
  Value* x = t.input("x", Shape({2, 3}));
  Value* shared = node(t, "Neg", {x}, "shared");  // read by the Transpose and by a graph output
  Node* tr = t.add("Transpose", {shared}, "tr");
  tr->attrs["perm"] = std::vector<int64_t>{1, 0};
  Value* scaled = node(t, "Mul", {tr->outputs[0], t.c(2.f)}, "scaled");
  t.g.outputs.push_back(node(t, "Relu", {scaled}, "r"));
  t.g.outputs.push_back(shared);
  Pattern transposed = op("Transpose", {op("Neg", {any().as("x")}).keep()}).attr("perm", {1, 0});
  Pattern p = op("Relu", {maybe(transposed, [](Pattern v) { return op("Mul", {v, scalar().as("s")}); })});
  Match m;
  const Uses uses(t.g);
  ASSERT_TRUE(match(t.g.nodes().back().get(), p, uses, m));
  EXPECT_EQ(m["x"], x);
  ASSERT_NE(m["s"], nullptr);
  EXPECT_EQ(m.nodes.size(), 3u);  // Relu, Mul, Transpose; not the kept Neg
  // Without the Mul the same pattern matches through maybe()'s second alternative.
  TestNet u;
  Value* ux = u.input("x", Shape({2, 3}));
  Node* ut = u.add("Transpose", {node(u, "Neg", {ux}, "n")}, "t");
  ut->attrs["perm"] = std::vector<int64_t>{1, 0};
  u.g.outputs.push_back(node(u, "Relu", {ut->outputs[0]}, "r"));
  Match um;
  ASSERT_TRUE(match(u.g.nodes().back().get(), p, Uses(u.g), um));
  EXPECT_EQ(um["s"], nullptr);
  ut->attrs["perm"] = std::vector<int64_t>{0, 1};  // another perm: no match
  EXPECT_FALSE(match(u.g.nodes().back().get(), p, Uses(u.g), um));
  // absent(): Clip(v) with no bounds matches, Clip(v, lo) does not.
  Value* c0 = node(u, "Clip", {ux}, "c0");
  Value* c1 = node(u, "Clip", {ux, u.c(0.f)}, "c1");
  Pattern bare = op("Clip", {any(), absent(), absent()});
  Match vm;
  EXPECT_TRUE(match_value(c0, bare, vm));
  EXPECT_FALSE(match_value(c1, bare, vm));
}

// A rule's dead_reader lets readers outside the match stay (they die with it); the covered nodes
// are then left for dead-node elimination.
TEST(Rewrite, DeadReadersLeaveTheCoveredNodes) {
  TestNet t;
  Value* x = t.input("x", Shape({2, 3}));
  Value* n = node(t, "Neg", {x}, "n");
  node(t, "Shape", {n}, "sh");  // reads the interior Neg's output: dies with the match
  t.g.outputs.push_back(node(t, "Relu", {n}, "r"));
  auto rule = [](std::function<bool(const Node&)> dead) {
    return Rule{"neg_relu", op("Relu", {op("Neg", {any().as("v")})}),
                [](const Match& m, Rewriter& rw) {
                  rw.replace_root("NegRelu", "kiln", {m["v"]});
                  return true;
                },
                std::move(dead)};
  };
  PassContext ctx;
  const Rule strict[] = {rule(nullptr)};
  EXPECT_EQ(*apply(t.g, ctx, "test", strict), 0);
  const Rule lenient[] = {rule([](const Node& r) { return r.op_type == "Shape"; })};
  EXPECT_EQ(*apply(t.g, ctx, "test", lenient), 1);
  ASSERT_EQ(t.g.nodes().size(), 3u);  // the Neg and the Shape stay for dead-node elimination
  EXPECT_EQ(t.g.nodes()[2]->op_type, "NegRelu");
  EXPECT_TRUE(eliminate_dead_nodes(t.g, ctx));
  EXPECT_EQ(t.g.nodes().size(), 1u);
}

}  // namespace
}  // namespace kiln::passes
