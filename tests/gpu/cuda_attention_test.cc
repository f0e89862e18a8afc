// The CUDA Attention kernel (float16, the fused kernel of kernels/attention.cu) against the CPU
// reference in float32, on a real GPU (label gpu; skips without one): 3-D [B, S, H*D] and 4-D
// [B, H, S, D] layouts, sequence lengths that are and are not multiples of the 64-key tile, a
// broadcast additive mask with masked keys, head sizes 32/64/128, grids that take blocks of 1, 2
// and 4 warps. Bound: relative L2 1e-2.
#include <random>

#include "onnx/onnx_pb.h"
#include "tests/gpu/gpu_test_util.h"

namespace kiln {
namespace {

using namespace gpu_test;

struct Case { int64_t b, s, h, d; bool four_d; bool row_mask = false; };  // row_mask: [B,1,S,S], else [B,1,1,S]
std::vector<int64_t> mask_dims(const Case& c) {
  return {c.b, 1, c.row_mask ? c.s : 1, c.s};
}
void PrintTo(const Case& c, std::ostream* os) {  // not gtest's byte dump (padding bytes vary)
  *os << "b" << c.b << " s" << c.s << " h" << c.h << " d" << c.d << (c.four_d ? " 4-D" : " 3-D");
}

std::vector<int64_t> qkv_dims(const Case& c) {
  return c.four_d ? std::vector<int64_t>{c.b, c.h, c.s, c.d} : std::vector<int64_t>{c.b, c.s, c.h * c.d};
}

std::string model(const Case& c) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(23);
  auto* g = m.mutable_graph();
  for (const char* n : {"q", "k", "v"}) add_float_input(g, n, qkv_dims(c));
  add_float_input(g, "mask", mask_dims(c));
  g->add_output()->set_name("y");
  auto* n = g->add_node();
  n->set_op_type("Attention");
  n->set_name("attention");
  for (const char* i : {"q", "k", "v", "mask"}) n->add_input(i);
  n->add_output("y");
  if (!c.four_d) {
    for (const char* a : {"q_num_heads", "kv_num_heads"}) {
      auto* at = n->add_attribute();
      at->set_name(a);
      at->set_type(onnx::AttributeProto_AttributeType_INT);
      at->set_i(c.h);
    }
  }
  return m.SerializeAsString();
}

std::vector<float> run(const Case& c, BackendKind backend, const std::vector<std::vector<float>>& in, std::string* tactic) {
  std::vector<Input> inputs;
  const char* names[] = {"q", "k", "v", "mask"};
  for (int i = 0; i < 4; ++i) inputs.push_back({names[i], i < 3 ? qkv_dims(c) : mask_dims(c), &in[i]});
  return run_model(model(c), backend, inputs, {{"y", size_t(c.b * c.s * c.h * c.d)}}, "Attention", tactic);
}

class CudaAttention : public ::testing::TestWithParam<Case> {};

TEST_P(CudaAttention, Float16KernelMatchesTheCpu) {
  if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
  const Case c = GetParam();
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  const size_t n = size_t(c.b * c.s * c.h * c.d);
  std::vector<std::vector<float>> in(4);
  for (int i = 0; i < 3; ++i) for (size_t j = 0; j < n; ++j) in[i].push_back(nd(rng));
  for (int64_t bi = 0; bi < c.b; ++bi)
    for (int64_t r = 0; r < (c.row_mask ? c.s : 1); ++r)
      for (int64_t j = 0; j < c.s; ++j) in[3].push_back(bi == 1 && j >= c.s - 5 + r % 3 ? -10000.f : 0.1f * nd(rng));
  std::string cpu_tactic, cuda_tactic;
  auto want = run(c, BackendKind::kCPU, in, &cpu_tactic);
  auto got = run(c, BackendKind::kCUDA, in, &cuda_tactic);
  EXPECT_EQ(cuda_tactic, "cuda.attention");
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LT(rel_l2(got, want), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAttention,
                         ::testing::Values(Case{2, 128, 12, 64, false}, Case{2, 197, 3, 64, false},
                                           Case{1, 77, 2, 32, true}, Case{2, 130, 2, 128, false},
                                           Case{3, 64, 4, 64, true},
                                           // Enough (batch, head, row tile)s for the 4-warp and
                                           // 2-warp blocks (the small ones above take 1 warp).
                                           Case{6, 197, 12, 64, false}, Case{1, 300, 20, 64, true},
                                           Case{4, 256, 12, 128, false}, Case{8, 100, 12, 32, false},
                                           Case{2, 150, 4, 64, false, true}),  // a mask per query row
                         [](const ::testing::TestParamInfo<Case>& i) {  // e.g. b2_s128_h12_d64_3d
                           const Case& c = i.param;
                           return "b" + std::to_string(c.b) + "_s" + std::to_string(c.s) + "_h" + std::to_string(c.h) +
                                  "_d" + std::to_string(c.d) + (c.four_d ? "_4d" : "_3d") +
                                  (c.row_mask ? "_rowmask" : "");
                         });

}  // namespace
}  // namespace kiln
