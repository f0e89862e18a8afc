// The channels-last depthwise convolution kernels (kernels/conv_nhwc_depthwise.cu: the K x K stride-S
// fast path and the general one) with the input activation convert_layout folds in (a Clip or a
// SiLU before the convolution), and the float16 channels-last ReduceMean (kernels/reduce.cu
// cols_h8, a GlobalAveragePool after the convolution) and the 16-byte broadcast Mul
// (elementwise_common.cuh k_map_bcast_vec, the convolution's output times the pool), against the CPU reference in float32, on
// a real GPU (label gpu; skips without one). Batch 32 so that the builder runs channels-last.
// Bound: relative L2 1e-2.
#include <random>
#include <set>

#include "onnx/onnx_pb.h"
#include "tests/gpu/gpu_test_util.h"

namespace kiln {
namespace {

using namespace gpu_test;

struct Case { int64_t c, h, w, k, s, dil; bool silu; };
void PrintTo(const Case& c, std::ostream* os) {
  *os << "c" << c.c << " " << c.h << "x" << c.w << " k" << c.k << " s" << c.s << " d" << c.dil << (c.silu ? " silu" : " clip");
}

constexpr int64_t kN = 32;

int64_t out_dim(const Case& c, int64_t in) { return (in + 2 * (c.k / 2) * c.dil - c.dil * (c.k - 1) - 1) / c.s + 1; }

// x -> act -> depthwise Conv (bias) -> y, p = GlobalAveragePool(y), q = y * p.
std::string model(const Case& c, const std::vector<float>& w, const std::vector<float>& b) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  add_float_input(g, "x", {kN, c.c, c.h, c.w});
  auto init = [&](const char* name, std::vector<int64_t> dims, const std::vector<float>& v) {
    add_float_initializer(g, name, dims, v);
  };
  init("w", {c.c, 1, c.k, c.k}, w);
  init("b", {c.c}, b);
  init("lo", {}, {0.25f});  // Clip(0) != 0: the zero padding must not be activated
  init("hi", {}, {1.5f});
  if (c.silu) {
    add_node(g, "Sigmoid", {"x"}, "sg");
    add_node(g, "Mul", {"x", "sg"}, "a");
  } else {
    add_node(g, "Clip", {"x", "lo", "hi"}, "a");
  }
  auto* conv = add_node(g, "Conv", {"a", "w", "b"}, "y");
  const int64_t p = (c.k / 2) * c.dil;
  add_ints(conv, "pads", {p, p, p, p});
  add_ints(conv, "strides", {c.s, c.s});
  add_ints(conv, "dilations", {c.dil, c.dil});
  auto* gr = conv->add_attribute();
  gr->set_name("group");
  gr->set_type(onnx::AttributeProto_AttributeType_INT);
  gr->set_i(c.c);
  add_node(g, "GlobalAveragePool", {"y"}, "p");
  add_node(g, "Mul", {"y", "p"}, "q");  // channels-last [N,H,W,C] * [N,1,1,C]: the 16-byte broadcast path
  g->add_output()->set_name("y");
  g->add_output()->set_name("p");
  g->add_output()->set_name("q");
  return m.SerializeAsString();
}

// Outputs y, p, q, one after the other; *tactic: the depthwise layer's tactic.
std::vector<float> run(const Case& c, BackendKind backend, const std::vector<float>& in, const std::vector<float>& w,
                       const std::vector<float>& b, std::string* tactic) {
  const int64_t oh = out_dim(c, c.h), ow = out_dim(c, c.w);
  const size_t ny = size_t(kN * c.c * oh * ow), np = size_t(kN * c.c);
  return run_model(model(c, w, b), backend, {{"x", {kN, c.c, c.h, c.w}, &in}}, {{"y", ny}, {"p", np}, {"q", ny}},
                   "kiln.ConvAct", tactic);
}

// Random input, weights (scaled by 1/k) and bias for a case.
void fill(const Case& c, unsigned seed, std::vector<float>& x, std::vector<float>& w, std::vector<float>& b) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  x.resize(size_t(kN * c.c * c.h * c.w));
  w.resize(size_t(c.c * c.k * c.k));
  b.resize(size_t(c.c));
  for (float& v : x) v = nd(rng);
  for (float& v : w) v = nd(rng) / float(c.k);
  for (float& v : b) v = 0.1f * nd(rng);
}

class CudaDepthwise : public ::testing::TestWithParam<Case> {};

TEST_P(CudaDepthwise, Float16KernelsMatchTheCpu) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  const Case c = GetParam();
  std::vector<float> x, w, b;
  fill(c, 1, x, w, b);
  std::string cpu_tactic, cuda_tactic;
  auto want = run(c, BackendKind::kCPU, x, w, b, &cpu_tactic);
  auto got = run(c, BackendKind::kCUDA, x, w, b, &cuda_tactic);
  // float16: the tile kernel takes 8-channel packs, K 3 or 5, stride 1 or 2, dilation 1.
  const bool tile = c.c % 8 == 0 && (c.k == 3 || c.k == 5) && (c.s == 1 || c.s == 2) && c.dil == 1;
  EXPECT_EQ(cuda_tactic, tile ? "cuda.conv.dw_tile.k" + std::to_string(c.k) + "s" + std::to_string(c.s) : "cuda.conv.dw_direct");
  ASSERT_EQ(got.size(), want.size());
  const size_t np = size_t(kN * c.c), ny = (want.size() - np) / 2;
  EXPECT_LT(rel_l2(got, want, 0, ny), 1e-2) << "y";
  EXPECT_LT(rel_l2(got, want, ny, ny + np), 1e-2) << "pooled";
  EXPECT_LT(rel_l2(got, want, ny + np, want.size()), 1e-2) << "scaled";
}

// Tuning (optimization level 5) times both variants of a shape a tile kernel takes, the tile
// kernel and the direct one, keeps one, and the engine still matches the CPU.
TEST(CudaDepthwiseTuning, TimesTheTileAndTheDirectKernel) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  const Case c{64, 28, 28, 3, 1, 1, false};
  std::vector<float> x, w, b;
  fill(c, 2, x, w, b);
  const int64_t oh = out_dim(c, c.h), ow = out_dim(c, c.w);
  const size_t ny = size_t(kN * c.c * oh * ow), np = size_t(kN * c.c);
  const std::vector<Input> in{{"x", {kN, c.c, c.h, c.w}, &x}};
  const std::vector<Output> out{{"y", ny}, {"p", np}, {"q", ny}};
  auto want = run_model(model(c, w, b), BackendKind::kCPU, in, out);
  LayerInfo info;
  auto got = run_model(model(c, w, b), BackendKind::kCUDA, in, out, "kiln.ConvAct", nullptr,
                       [](BuilderConfig& cfg) { cfg.setBuilderOptimizationLevel(5); }, &info);
  const std::set<std::string> variants{"cuda.conv.dw_tile.k3s1", "cuda.conv.dw_direct"};
  EXPECT_EQ(info.tactic_candidates, 2);
  EXPECT_TRUE(variants.count(info.tactic)) << info.tactic;
  EXPECT_TRUE(variants.count(info.runner_up) && info.runner_up != info.tactic) << info.runner_up;
  EXPECT_GT(info.tactic_ms, 0);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want, 0, ny), 1e-2) << "y";
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaDepthwise,
                         ::testing::Values(Case{16, 14, 14, 3, 1, 1, false}, Case{24, 15, 13, 3, 2, 1, true},
                                           Case{40, 9, 7, 5, 1, 1, true}, Case{32, 12, 11, 5, 2, 1, false},
                                           Case{8, 10, 10, 3, 1, 2, true}, Case{6, 9, 9, 3, 1, 1, false},
                                           Case{1160, 7, 7, 5, 1, 1, true},
                                           // several tiles across, down and over the channels, odd sizes
                                           Case{144, 57, 58, 5, 2, 1, true}, Case{96, 37, 75, 3, 1, 1, true},
                                           Case{240, 29, 28, 5, 1, 1, false}, Case{32, 113, 112, 3, 1, 1, true},
                                           Case{64, 9, 260, 5, 2, 1, true}),  // a window row too wide for 16 groups
                         [](const ::testing::TestParamInfo<Case>& i) {  // e.g. c16_14x14_k3_s1_d1_clip
                           const Case& c = i.param;
                           return "c" + std::to_string(c.c) + "_" + std::to_string(c.h) + "x" + std::to_string(c.w) +
                                  "_k" + std::to_string(c.k) + "_s" + std::to_string(c.s) + "_d" + std::to_string(c.dil) +
                                  (c.silu ? "_silu" : "_clip");
                         });

}  // namespace
}  // namespace kiln
