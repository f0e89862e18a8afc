// The CUDA integer kernels (kernels/quantize.cu, kernels/qlinear_{conv,matmul}.cu) against the CPU reference, on
// a real GPU (label gpu; skips without one): QuantizeLinear/DequantizeLinear per tensor and per
// axis; QLinearConv and ConvInteger on the int8 tensor-core GEMM (cuda.qconv.imma: uint8 and int8
// activations, per-channel weights with and without zero points, bias, strides, 1-D, an output
// channel count that is not a multiple of 4, a workspace small enough to split the GEMM into
// chunks that do not end at an image) and on the direct kernel (groups, depthwise); QLinearMatMul
// and MatMulInteger on both paths; and an ONNX Runtime-style Q/DQ convolution that fuse_qdq folds.
// Each model takes float input and gives float output (Q at the start, DQ at the end), built for
// both backends in float32; the outputs must be equal bit for bit (the integer results are exact
// and the requantization is the CPU's float arithmetic), and the layers must run the tactic named.
// The kernels are enabled here (KILN_CUDA_INT8=1, launch.h) until this test has passed on a GPU.
#include <cstdlib>
#include <cstring>
#include <random>

#include "tests/gpu/gpu_test_util.h"

namespace kiln {
namespace {

using namespace gpu_test;
using test::Attr;
using test::ModelBuilder;

// An initializer of 8-bit or int32 integers (raw data).
template <class T>
void add_ints_init(ModelBuilder& m, const std::string& name, const std::vector<int64_t>& dims, const std::vector<T>& v) {
  auto* t = m.graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(std::is_same_v<T, int8_t>    ? onnx::TensorProto_DataType_INT8
                   : std::is_same_v<T, uint8_t> ? onnx::TensorProto_DataType_UINT8
                                                : onnx::TensorProto_DataType_INT32);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)));
}

template <class T>
std::vector<T> random_ints(size_t n, int lo, int hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<T> v(n);
  for (T& x : v) x = T(d(rng));
  return v;
}

std::vector<float> random_floats(size_t n, float lo, float hi, unsigned seed) {
  test::Uniform u(seed, lo, hi);
  return u.take(int64_t(n));
}

// CUDA (float32, `workspace`) equals CPU bit for bit, the CUDA layer of `op` runs a tactic starting
// with `tactic`, and the output is not constant (the test would pass on a broken graph otherwise).
void expect_equal(const std::string& bytes, const std::vector<int64_t>& xdims, size_t ysize, const std::string& op,
                  const std::string& tactic, size_t workspace = size_t(256) << 20) {
  size_t xn = 1;
  for (int64_t d : xdims) xn *= size_t(d);
  const std::vector<float> x = random_floats(xn, -2.f, 2.f, 7);
  auto float32 = [workspace](BuilderConfig& cfg) {
    cfg.clearFlag(BuilderFlag::kFP16);
    cfg.clearFlag(BuilderFlag::kTF32);
    cfg.setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, workspace);
  };
  std::string ran;
  const std::vector<float> cpu = run_model(bytes, BackendKind::kCPU, {{"x", xdims, &x}}, {{"y", ysize}});
  const std::vector<float> gpu = run_model(bytes, BackendKind::kCUDA, {{"x", xdims, &x}}, {{"y", ysize}}, op, &ran, float32);
  ASSERT_EQ(cpu.size(), gpu.size());
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < cpu.size(); ++i)
    if (std::memcmp(&cpu[i], &gpu[i], 4) != 0 && differ++ == 0) first = i;
  EXPECT_EQ(differ, 0u) << "first at " << first << ": CUDA " << gpu[first] << " vs CPU " << cpu[first];
  float lo = cpu[0], hi = cpu[0];
  for (float v : cpu) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_LT(lo, hi) << "constant output";
  EXPECT_EQ(ran.rfind(tactic, 0), 0u) << op << " ran '" << ran << "'";
}

struct ConvCase {
  const char* name;
  int64_t n, c, m, len;  // len: spatial extent (2-D: len x len; 1-D: len)
  int64_t k, stride, pad, groups;
  bool x_u8, w_u8, w_zp, bias, one_d;
  const char* tactic;
  size_t workspace;
};
void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

// x -> Q(sx, zx) -> QLinearConv -> DQ(sy, zy) -> y.
std::string qconv_model(const ConvCase& c) {
  ModelBuilder m(13);
  const std::vector<int64_t> sp = c.one_d ? std::vector<int64_t>{c.len} : std::vector<int64_t>{c.len, c.len};
  std::vector<test::Dim> xd{c.n, c.c};
  for (int64_t d : sp) xd.push_back(d);
  m.add_input("x", xd).add_output("y");
  const uint8_t zx8 = 131;
  m.add_initializer("sx", {}, std::vector<float>{0.0173f});
  if (c.x_u8) add_ints_init<uint8_t>(m, "zx", {}, {zx8});
  else add_ints_init<int8_t>(m, "zx", {}, {int8_t(-3)});
  const int64_t cg = c.c / c.groups;
  std::vector<int64_t> wdims{c.m, cg};
  int64_t wn = c.m * cg;
  for (size_t i = 0; i < sp.size(); ++i) wdims.push_back(c.k), wn *= c.k;
  if (c.w_u8) add_ints_init<uint8_t>(m, "w", wdims, random_ints<uint8_t>(size_t(wn), 0, 255, 11));
  else add_ints_init<int8_t>(m, "w", wdims, random_ints<int8_t>(size_t(wn), -127, 127, 11));
  m.add_initializer("sw", {c.m}, random_floats(size_t(c.m), 0.002f, 0.02f, 12));
  if (c.w_u8) add_ints_init<uint8_t>(m, "zw", {c.m}, random_ints<uint8_t>(size_t(c.m), c.w_zp ? 100 : 0, c.w_zp ? 150 : 0, 13));
  else add_ints_init<int8_t>(m, "zw", {c.m}, random_ints<int8_t>(size_t(c.m), c.w_zp ? -20 : 0, c.w_zp ? 20 : 0, 13));
  m.add_initializer("sy", {}, std::vector<float>{0.05f});
  add_ints_init<uint8_t>(m, "zy", {}, {uint8_t(121)});
  if (c.bias) add_ints_init<int32_t>(m, "b", {c.m}, random_ints<int32_t>(size_t(c.m), -3000, 3000, 14));
  m.add_node("QuantizeLinear", {"x", "sx", "zx"}, "xq");
  std::vector<std::string> in{"xq", "sx", "zx", "w", "sw", "zw", "sy", "zy"};
  if (c.bias) in.push_back("b");
  std::vector<int64_t> pads(2 * sp.size(), c.pad), strides(sp.size(), c.stride);
  m.add_node("QLinearConv", in, "yq", {Attr("pads", pads), Attr("strides", strides), Attr("group", c.groups)});
  m.add_node("DequantizeLinear", {"yq", "sy", "zy"}, "y");
  return m.bytes();
}

size_t conv_out(const ConvCase& c) {
  const int64_t o = (c.len + 2 * c.pad - c.k) / c.stride + 1;
  return size_t(c.n * c.m * (c.one_d ? o : o * o));
}

void enable_int8_kernels() { setenv("KILN_CUDA_INT8", "1", 1); }

class CudaInt8Conv : public ::testing::TestWithParam<ConvCase> {
 protected:
  void SetUp() override {
    if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
    enable_int8_kernels();
  }
};

TEST_P(CudaInt8Conv, EqualsTheCpu) {
  const ConvCase& c = GetParam();
  std::vector<int64_t> xdims{c.n, c.c, c.len};
  if (!c.one_d) xdims.push_back(c.len);
  expect_equal(qconv_model(c), xdims, conv_out(c), "QLinearConv", c.tactic, c.workspace);
}

constexpr size_t kWs = size_t(256) << 20;
INSTANTIATE_TEST_SUITE_P(
    Cases, CudaInt8Conv,
    ::testing::Values(
        ConvCase{"u8x_s8w_3x3_bias", 2, 16, 32, 14, 3, 1, 1, 1, true, false, false, true, false, "cuda.qconv.imma", kWs},
        ConvCase{"s8x_u8w_zp_stride2", 2, 24, 16, 15, 3, 2, 1, 1, false, true, true, true, false, "cuda.qconv.imma", kWs},
        ConvCase{"u8x_s8w_zp_1x1_m10", 3, 32, 10, 7, 1, 1, 0, 1, true, false, true, false, false, "cuda.qconv.imma", kWs},
        ConvCase{"u8x_1d_k5", 2, 8, 12, 40, 5, 1, 2, 1, true, false, false, true, true, "cuda.qconv.imma", kWs},
        ConvCase{"chunks_1MiB_workspace", 4, 16, 32, 32, 3, 1, 1, 1, true, false, true, true, false, "cuda.qconv.imma",
                 size_t(1) << 20},
        ConvCase{"groups4", 2, 16, 32, 9, 3, 1, 1, 4, true, false, true, true, false, "cuda.qconv.direct", kWs},
        ConvCase{"depthwise", 2, 16, 16, 12, 3, 2, 1, 16, false, false, false, true, false, "cuda.qconv.direct", kWs}),
    [](const ::testing::TestParamInfo<ConvCase>& i) { return std::string(i.param.name); });

class CudaInt8 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gpu_usable()) GTEST_SKIP() << "SKIPPED (no GPU)";
    enable_int8_kernels();
  }
};

// x [2, 5, 40] -> Q(uint8) -> QLinearMatMul(B [40, 24] int8, per-column scale and zero point) -> DQ.
std::string qmatmul_model() {
  ModelBuilder m(13);
  m.add_input("x", {2, 5, 40}).add_output("y");
  m.add_initializer("sa", {}, std::vector<float>{0.02f});
  add_ints_init<uint8_t>(m, "za", {}, {uint8_t(125)});
  add_ints_init<int8_t>(m, "bq", {40, 24}, random_ints<int8_t>(40 * 24, -127, 127, 23));
  m.add_initializer("sb", {24}, random_floats(24, 0.005f, 0.02f, 21));
  add_ints_init<int8_t>(m, "zb", {24}, random_ints<int8_t>(24, -10, 10, 22));
  m.add_initializer("sy", {}, std::vector<float>{0.1f});
  add_ints_init<uint8_t>(m, "zy", {}, {uint8_t(127)});
  m.add_node("QuantizeLinear", {"x", "sa", "za"}, "aq");
  m.add_node("QLinearMatMul", {"aq", "sa", "za", "bq", "sb", "zb", "sy", "zy"}, "yq");
  m.add_node("DequantizeLinear", {"yq", "sy", "zy"}, "y");
  return m.bytes();
}

// A batched B that is not constant: x [2, 40, 40], A = Q(x) (uint8), B = Q(x^T) (int8; a
// transpose only, so both backends quantize the same numbers).
std::string qmatmul_batched_model() {
  ModelBuilder m(13);
  m.add_input("x", {2, 40, 40}).add_output("y");
  m.add_initializer("sa", {}, std::vector<float>{0.02f});
  add_ints_init<uint8_t>(m, "za", {}, {uint8_t(125)});
  m.add_initializer("sb", {}, std::vector<float>{0.03f});
  add_ints_init<int8_t>(m, "zb", {}, {int8_t(2)});
  m.add_initializer("sy", {}, std::vector<float>{0.2f});
  add_ints_init<uint8_t>(m, "zy", {}, {uint8_t(127)});
  m.add_node("QuantizeLinear", {"x", "sa", "za"}, "aq");
  m.add_node("Transpose", {"x"}, "xt", {Attr("perm", std::vector<int64_t>{0, 2, 1})});
  m.add_node("QuantizeLinear", {"xt", "sb", "zb"}, "bq");
  m.add_node("QLinearMatMul", {"aq", "sa", "za", "bq", "sb", "zb", "sy", "zy"}, "yq");
  m.add_node("DequantizeLinear", {"yq", "sy", "zy"}, "y");
  return m.bytes();
}

TEST_F(CudaInt8, QLinearMatMulTensorCores) {
  expect_equal(qmatmul_model(), {2, 5, 40}, 2 * 5 * 24, "QLinearMatMul", "cuda.qmatmul.imma");
}
TEST_F(CudaInt8, QLinearMatMulBatchedB) {
  expect_equal(qmatmul_batched_model(), {2, 40, 40}, 2 * 40 * 40, "QLinearMatMul", "cuda.qmatmul.direct");
}

// The int32 outputs: x -> Q -> MatMulInteger / ConvInteger (with zero points) -> Cast(float).
TEST_F(CudaInt8, MatMulIntegerAndConvInteger) {
  {
    ModelBuilder m(13);
    m.add_input("x", {6, 36}).add_output("y");
    m.add_initializer("sa", {}, std::vector<float>{0.02f});
    add_ints_init<uint8_t>(m, "za", {}, {uint8_t(128)});
    add_ints_init<uint8_t>(m, "b", {36, 20}, random_ints<uint8_t>(36 * 20, 0, 255, 31));
    add_ints_init<uint8_t>(m, "zb", {20}, random_ints<uint8_t>(20, 120, 136, 32));
    m.add_node("QuantizeLinear", {"x", "sa", "za"}, "aq");
    m.add_node("MatMulInteger", {"aq", "b", "za", "zb"}, "yi");
    m.add_node("Cast", {"yi"}, "y", {Attr("to", int64_t(onnx::TensorProto_DataType_FLOAT))});
    expect_equal(m.bytes(), {6, 36}, 6 * 20, "MatMulInteger", "cuda.qmatmul.imma");
  }
  {
    ModelBuilder m(13);
    m.add_input("x", {2, 8, 10, 10}).add_output("y");
    m.add_initializer("sa", {}, std::vector<float>{0.02f});
    add_ints_init<int8_t>(m, "za", {}, {int8_t(5)});
    add_ints_init<int8_t>(m, "w", {12, 8, 3, 3}, random_ints<int8_t>(12 * 8 * 9, -127, 127, 33));
    m.add_node("QuantizeLinear", {"x", "sa", "za"}, "xq");
    m.add_node("ConvInteger", {"xq", "w", "za"}, "yi", {Attr("pads", std::vector<int64_t>{1, 1, 1, 1})});
    m.add_node("Cast", {"yi"}, "y", {Attr("to", int64_t(onnx::TensorProto_DataType_FLOAT))});
    expect_equal(m.bytes(), {2, 8, 10, 10}, 2 * 12 * 100, "ConvInteger", "cuda.qconv.imma");
  }
}

// Per-axis QuantizeLinear (int8) and DequantizeLinear on axis 1 of [2, 8, 5, 5].
TEST_F(CudaInt8, QuantizeDequantizePerAxis) {
  ModelBuilder m(13);
  m.add_input("x", {2, 8, 5, 5}).add_output("y");
  m.add_initializer("s", {8}, random_floats(8, 0.005f, 0.03f, 41));
  add_ints_init<int8_t>(m, "z", {8}, random_ints<int8_t>(8, -20, 20, 42));
  m.add_node("QuantizeLinear", {"x", "s", "z"}, "q", {Attr("axis", int64_t(1))});
  m.add_node("DequantizeLinear", {"q", "s", "z"}, "y", {Attr("axis", int64_t(1))});
  expect_equal(m.bytes(), {2, 8, 5, 5}, 2 * 8 * 25, "QuantizeLinear", "cuda.quantize");
}

// ONNX Runtime's QDQ format: DQ(x) and DQ(w) (per channel) around a float Conv with a float bias,
// Relu, then Q -> DQ: fuse_qdq folds it into QLinearConv + Max, which must run on the GPU.
TEST_F(CudaInt8, QdqConvFoldsAndRunsOnTheTensorCores) {
  ModelBuilder m(13);
  m.add_input("x", {4, 16, 20, 20}).add_output("y");
  m.add_initializer("sx", {}, std::vector<float>{0.02f});
  add_ints_init<uint8_t>(m, "zx", {}, {uint8_t(128)});
  add_ints_init<int8_t>(m, "wq", {32, 16, 3, 3}, random_ints<int8_t>(32 * 16 * 9, -127, 127, 51));
  m.add_initializer("sw", {32}, random_floats(32, 0.002f, 0.01f, 52));
  add_ints_init<int8_t>(m, "zw", {32}, std::vector<int8_t>(32, 0));
  m.add_initializer("b", {32}, random_floats(32, -0.5f, 0.5f, 53));
  m.add_initializer("sy", {}, std::vector<float>{0.04f});
  add_ints_init<uint8_t>(m, "zy", {}, {uint8_t(0)});
  m.add_node("QuantizeLinear", {"x", "sx", "zx"}, "xq");
  m.add_node("DequantizeLinear", {"xq", "sx", "zx"}, "xd");
  m.add_node("DequantizeLinear", {"wq", "sw", "zw"}, "wd", {Attr("axis", int64_t(0))});
  m.add_node("Conv", {"xd", "wd", "b"}, "c", {Attr("pads", std::vector<int64_t>{1, 1, 1, 1})});
  m.add_node("Relu", {"c"}, "r");
  m.add_node("QuantizeLinear", {"r", "sy", "zy"}, "yq");
  m.add_node("DequantizeLinear", {"yq", "sy", "zy"}, "y");
  expect_equal(m.bytes(), {4, 16, 20, 20}, 4 * 32 * 400, "QLinearConv", "cuda.qconv.imma");
}

// ONNX Runtime's QDQ residual idioms, which fuse_qdq folds into the com.microsoft ops: a = Q(x),
// b = Q(x / 2); Q(DQ(a) + DQ(b)) -> QLinearAdd, Q(DQ(a) * DQ(b)) -> QLinearMul, and their Concat
// at another scale -> QLinearConcat (one input requantized, one copied).
TEST_F(CudaInt8, QLinearAddMulConcat) {
  for (bool u8 : {false, true}) {
    ModelBuilder m(13);
    m.add_input("x", {2, 8, 6, 6}).add_output("y");
    auto zero = [&](const char* name, int s8, int u) {
      if (u8) add_ints_init<uint8_t>(m, name, {}, {uint8_t(u)});
      else add_ints_init<int8_t>(m, name, {}, {int8_t(s8)});
    };
    m.add_initializer("sa", {}, std::vector<float>{0.02f});
    zero("za", 3, 131);
    m.add_initializer("sb", {}, std::vector<float>{0.013f});
    zero("zb", -5, 120);
    m.add_initializer("ss", {}, std::vector<float>{0.03f});
    zero("zs", 1, 128);
    m.add_initializer("sm", {}, std::vector<float>{0.005f});
    zero("zm", -2, 125);
    m.add_initializer("half", {}, std::vector<float>{0.5f});
    m.add_node("QuantizeLinear", {"x", "sa", "za"}, "a");
    m.add_node("Mul", {"x", "half"}, "xh");
    m.add_node("QuantizeLinear", {"xh", "sb", "zb"}, "b");
    m.add_node("DequantizeLinear", {"a", "sa", "za"}, "ad");
    m.add_node("DequantizeLinear", {"b", "sb", "zb"}, "bd");
    m.add_node("Add", {"ad", "bd"}, "s");
    m.add_node("QuantizeLinear", {"s", "ss", "zs"}, "sq");
    m.add_node("Mul", {"ad", "bd"}, "p");
    m.add_node("QuantizeLinear", {"p", "sm", "zm"}, "pq");
    m.add_node("DequantizeLinear", {"sq", "ss", "zs"}, "sd");
    m.add_node("DequantizeLinear", {"pq", "sm", "zm"}, "pd");
    m.add_node("Concat", {"sd", "pd"}, "c", {Attr("axis", int64_t(1))});
    m.add_node("QuantizeLinear", {"c", "ss", "zs"}, "cq");  // sd copied, pd requantized
    m.add_node("DequantizeLinear", {"cq", "ss", "zs"}, "y");
    expect_equal(m.bytes(), {2, 8, 6, 6}, 2 * 16 * 36, "com.microsoft.QLinearConcat", "cuda.qlinear_elementwise");
  }
}

}  // namespace
}  // namespace kiln
