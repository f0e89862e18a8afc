#include "tests/ops/op_test.h"

namespace kiln::testing {

TEST(Elementwise, AddBroadcastsRowVector) {
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from_vector<float>({3}, {10, 20, 30});
  auto y = run_op("Add", {a, b});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({2, 3}, {11, 22, 33, 14, 25, 36})));
}

TEST(Elementwise, AddRejectsIncompatibleShapes) {
  auto y = run_op("Add", {Tensor::from_vector<float>({2, 3}, {}), Tensor::from_vector<float>({2}, {})});
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("broadcast"), std::string::npos) << y.status().message();
}

TEST(Elementwise, IntegerDivisionByZeroDoesNotTrap) {
  auto y = run_op("Div", {Tensor::from_vector<int32_t>({2}, {7, 8}), Tensor::from_vector<int32_t>({2}, {2, 0})});
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].data<int32_t>()[0], 3);
}

}  // namespace kiln::testing
