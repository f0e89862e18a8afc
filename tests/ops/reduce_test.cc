#include <limits>

#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
const Tensor kX = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
Tensor axes(std::vector<int64_t> a) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(a.size())}, a); }
}  // namespace

TEST(Reduce, SumAxesInputDropsDims) {
  auto y = run_op("ReduceSum", {kX, axes({1})}, {{"keepdims", int64_t(0)}}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({2}, {6, 15})));
}

TEST(Reduce, MeanAttributeAxesBeforeOpset18KeepsDims) {
  auto y = run_op("ReduceMean", {kX}, {{"axes", std::vector<int64_t>{-2}}}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 3}, {2.5, 3.5, 4.5})));
}

TEST(Reduce, MaxAxesInputFromOpset18) {
  auto y = run_op("ReduceMax", {kX, axes({0})}, {}, 1, 18);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({1, 3}, {4, 5, 6})));
}

TEST(Reduce, EmptyAxesReducesAllUnlessNoop) {
  auto all = run_op("ReduceSum", {kX, axes({})}, {}, 1, 13);
  ASSERT_TRUE(all.is_ok()) << all.status().message();
  EXPECT_TRUE(tensors_near((*all)[0], Tensor::from_vector<float>({1, 1}, {21})));
  auto noop = run_op("ReduceSum", {kX, axes({})}, {{"noop_with_empty_axes", int64_t(1)}}, 1, 13);
  ASSERT_TRUE(noop.is_ok()) << noop.status().message();
  EXPECT_TRUE(tensors_near((*noop)[0], kX));
}

TEST(Reduce, EmptySetGivesIdentity) {
  Tensor empty = Tensor::from_vector<float>({2, 0}, {});
  std::map<std::string, AttrValue> attrs{{"axes", std::vector<int64_t>{1}}};
  const float inf = std::numeric_limits<float>::infinity();
  auto mx = run_op("ReduceMax", {empty}, attrs, 1, 13);
  ASSERT_TRUE(mx.is_ok()) << mx.status().message();
  // tensors_near cannot compare infinities (inf - inf is NaN), so compare exactly.
  ASSERT_EQ((*mx)[0].dims(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ((*mx)[0].data<float>()[0], -inf);
  EXPECT_EQ((*mx)[0].data<float>()[1], -inf);
  auto prod = run_op("ReduceProd", {empty}, attrs, 1, 13);
  ASSERT_TRUE(prod.is_ok()) << prod.status().message();
  EXPECT_TRUE(tensors_near((*prod)[0], Tensor::from_vector<float>({2, 1}, {1, 1})));
  auto imin = run_op("ReduceMin", {Tensor::from_vector<int32_t>({0, 2}, {})}, {{"axes", std::vector<int64_t>{0}}}, 1, 13);
  ASSERT_TRUE(imin.is_ok()) << imin.status().message();
  EXPECT_EQ((*imin)[0].data<int32_t>()[1], std::numeric_limits<int32_t>::max());
}

TEST(Reduce, IntegerSumIsExact) {
  const int64_t big = (int64_t(1) << 53) + 1;  // not representable in double
  auto y = run_op("ReduceSum", {Tensor::from_vector<int64_t>({2}, {big, 2}), axes({0})}, {}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].data<int64_t>()[0], big + 2);
}

TEST(Reduce, LogSumExpDoesNotOverflow) {
  auto y = run_op("ReduceLogSumExp", {Tensor::from_vector<float>({2}, {1000, 1000})}, {{"keepdims", int64_t(0)}}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::scalar<float>(1000 + std::log(2.0f))));
}

TEST(Reduce, RejectsAxisOutOfRange) {
  auto y = run_op("ReduceL2", {kX}, {{"axes", std::vector<int64_t>{2}}}, 1, 13);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("out of range"), std::string::npos) << y.status().message();
}

TEST(Reduce, ArgMaxSelectLastIndex) {
  Tensor x = Tensor::from_vector<float>({2, 3}, {3, 1, 3, 0, 0, -1});
  auto first = run_op("ArgMax", {x}, {{"axis", int64_t(1)}}, 1, 13);
  ASSERT_TRUE(first.is_ok()) << first.status().message();
  EXPECT_TRUE(tensors_near((*first)[0], Tensor::from_vector<int64_t>({2, 1}, {0, 0})));
  auto last = run_op("ArgMax", {x}, {{"axis", int64_t(1)}, {"select_last_index", int64_t(1)}}, 1, 13);
  ASSERT_TRUE(last.is_ok()) << last.status().message();
  EXPECT_TRUE(tensors_near((*last)[0], Tensor::from_vector<int64_t>({2, 1}, {2, 1})));
}

TEST(Reduce, ArgMinNoKeepdims) {
  auto y = run_op("ArgMin", {kX}, {{"axis", int64_t(0)}, {"keepdims", int64_t(0)}}, 1, 13);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<int64_t>({3}, {0, 0, 0})));
}

TEST(Reduce, CumSumExclusiveReverse) {
  Tensor x = Tensor::from_vector<int32_t>({4}, {1, 2, 3, 4});
  auto y = run_op("CumSum", {x, Tensor::scalar<int64_t>(0)}, {{"exclusive", int64_t(1)}, {"reverse", int64_t(1)}}, 1, 14);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<int32_t>({4}, {9, 7, 4, 0})));
}

TEST(Reduce, CumSumAlongAxis1) {
  auto y = run_op("CumSum", {kX, Tensor::scalar<int32_t>(-1)}, {}, 1, 14);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({2, 3}, {1, 3, 6, 4, 9, 15})));
}

}  // namespace kiln::testing

namespace kiln::testing {

TEST(Reduce, BoolMaxMinAreAnyAllFromOpset20) {
  Tensor b = Tensor::from_vector<bool>({2, 2}, {true, false, false, false});
  auto mx = run_op("ReduceMax", {b, axes({1})}, {{"keepdims", int64_t(0)}}, 1, 20);
  ASSERT_TRUE(mx.is_ok()) << mx.status().message();
  EXPECT_TRUE(tensors_near((*mx)[0], Tensor::from_vector<bool>({2}, {true, false})));
  auto mn = run_op("ReduceMin", {b, axes({0})}, {{"keepdims", int64_t(0)}}, 1, 20);
  ASSERT_TRUE(mn.is_ok()) << mn.status().message();
  EXPECT_TRUE(tensors_near((*mn)[0], Tensor::from_vector<bool>({2}, {false, false})));
  EXPECT_FALSE(run_op("ReduceMax", {b, axes({1})}, {}, 1, 18).is_ok());
}

TEST(Reduce, CumProdExclusiveReverse) {
  Tensor x = Tensor::from_vector<float>({4}, {1, 2, 3, 4});
  Tensor axis = Tensor::scalar<int64_t>(0);
  auto y = run_op("CumProd", {x, axis}, {}, 1, 24);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({4}, {1, 2, 6, 24})));
  auto z = run_op("CumProd", {x, axis}, {{"exclusive", int64_t(1)}, {"reverse", int64_t(1)}}, 1, 24);
  ASSERT_TRUE(z.is_ok()) << z.status().message();
  EXPECT_TRUE(tensors_near((*z)[0], Tensor::from_vector<float>({4}, {24, 12, 4, 1})));
}

}  // namespace kiln::testing
