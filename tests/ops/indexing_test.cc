#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {

template <class T>
Tensor vec(std::vector<int64_t> dims, std::vector<T> v) { return Tensor::from_vector<T>(std::move(dims), v); }

// Runs the op, expects success, returns the outputs.
std::vector<Tensor> ok(const std::string& op, const std::vector<Tensor>& in, std::map<std::string, AttrValue> attrs = {},
                       size_t outs = 1, int opset = 17) {
  auto y = run_op(op, in, std::move(attrs), outs, opset);
  EXPECT_TRUE(y.is_ok()) << y.status().message();
  return y.is_ok() ? *y : std::vector<Tensor>(outs);
}

// Runs the op, expects an error that names the node and contains `what`.
void fails(const std::string& op, const std::vector<Tensor>& in, std::map<std::string, AttrValue> attrs,
           const std::string& what, size_t outs = 1, int opset = 17) {
  auto y = run_op(op, in, std::move(attrs), outs, opset);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find(op + "_under_test"), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find(what), std::string::npos) << y.status().message();
}

}  // namespace

TEST(Indexing, GatherNegativeIndicesAlongAxis1) {
  auto y = ok("Gather", {vec<float>({2, 3}, {1, 2, 3, 4, 5, 6}), vec<int32_t>({2}, {-1, 0})}, {{"axis", int64_t(1)}});
  EXPECT_TRUE(tensors_near(y[0], vec<float>({2, 2}, {3, 1, 6, 4})));
}

TEST(Indexing, GatherScalarIndexDropsTheAxis) {
  auto y = ok("Gather", {vec<bool>({3, 2}, {true, false, false, true, true, true}), Tensor::scalar<int64_t>(1)});
  EXPECT_EQ(y[0].dims(), (std::vector<int64_t>{2}));
  EXPECT_EQ(y[0].data<bool>()[1], true);
}

TEST(Indexing, GatherRejectsOutOfRangeIndex) {
  fails("Gather", {vec<float>({3}, {1, 2, 3}), vec<int64_t>({2}, {0, 3})}, {}, "index 3 is out of range");
  fails("Gather", {vec<float>({3}, {1, 2, 3}), vec<int64_t>({1}, {-4})}, {}, "index -4 is out of range");
}

TEST(Indexing, GatherRejectsBadAxis) {
  fails("Gather", {vec<float>({3}, {1, 2, 3}), vec<int64_t>({1}, {0})}, {{"axis", int64_t(1)}}, "axis 1");
}

TEST(Indexing, GatherElementsAndItsBoundsCheck) {
  auto y = ok("GatherElements", {vec<int32_t>({2, 2}, {1, 2, 3, 4}), vec<int64_t>({2, 2}, {0, 0, -1, 0})},
              {{"axis", int64_t(1)}});
  EXPECT_TRUE(tensors_near(y[0], vec<int32_t>({2, 2}, {1, 1, 4, 3})));
  fails("GatherElements", {vec<float>({2, 2}, {}), vec<int64_t>({1, 1}, {2})}, {}, "out of range");
}

TEST(Indexing, GatherNDWithBatchDims) {
  auto y = ok("GatherND", {vec<float>({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}), vec<int64_t>({2, 1}, {1, 0})},
              {{"batch_dims", int64_t(1)}});
  EXPECT_TRUE(tensors_near(y[0], vec<float>({2, 2}, {2, 3, 4, 5})));
  fails("GatherND", {vec<float>({2, 2}, {}), vec<int64_t>({1, 2}, {0, 2})}, {}, "out of range");
  fails("GatherND", {vec<float>({2, 2}, {}), vec<int64_t>({1, 3}, {0, 0, 0})}, {}, "indices.shape[-1]");
}

TEST(Indexing, ScatterElementsReductions) {
  Tensor data = vec<float>({1, 4}, {1, 2, 3, 4});
  Tensor idx = vec<int64_t>({1, 3}, {1, 1, -1});
  Tensor upd = vec<float>({1, 3}, {5, 0.5f, 7});
  auto add = ok("ScatterElements", {data, idx, upd}, {{"axis", int64_t(1)}, {"reduction", std::string("add")}});
  EXPECT_TRUE(tensors_near(add[0], vec<float>({1, 4}, {1, 7.5f, 3, 11})));
  auto mx = ok("ScatterElements", {data, idx, upd}, {{"axis", int64_t(1)}, {"reduction", std::string("max")}});
  EXPECT_TRUE(tensors_near(mx[0], vec<float>({1, 4}, {1, 5, 3, 7})));
  auto mn = ok("ScatterElements", {data, idx, upd}, {{"axis", int64_t(1)}, {"reduction", std::string("min")}});
  EXPECT_TRUE(tensors_near(mn[0], vec<float>({1, 4}, {1, 0.5f, 3, 4})));
  fails("ScatterElements", {data, idx, upd}, {{"reduction", std::string("avg")}}, "reduction 'avg'");
  fails("ScatterElements", {data, vec<int64_t>({1, 1}, {4}), vec<float>({1, 1}, {0})}, {{"axis", int64_t(1)}},
        "out of range");
}

TEST(Indexing, ScatterOpset10IsScatterElements) {
  auto y = ok("Scatter", {vec<int64_t>({2, 2}, {0, 0, 0, 0}), vec<int64_t>({1, 2}, {1, 0}), vec<int64_t>({1, 2}, {7, 8})},
              {}, 1, 10);
  EXPECT_TRUE(tensors_near(y[0], vec<int64_t>({2, 2}, {0, 8, 7, 0})));
}

TEST(Indexing, ScatterNDMultiplyWithDuplicates) {
  auto y = ok("ScatterND", {vec<float>({3, 2}, {1, 1, 2, 2, 3, 3}), vec<int64_t>({2, 1}, {1, 1}),
                            vec<float>({2, 2}, {2, 3, 4, 5})},
              {{"reduction", std::string("mul")}});
  EXPECT_TRUE(tensors_near(y[0], vec<float>({3, 2}, {1, 1, 16, 30, 3, 3})));
  fails("ScatterND", {vec<float>({3, 2}, {}), vec<int64_t>({1, 1}, {3}), vec<float>({1, 2}, {})}, {}, "out of range");
  fails("ScatterND", {vec<float>({3, 2}, {}), vec<int64_t>({1, 1}, {0}), vec<float>({1, 3}, {})}, {}, "updates shape");
}

TEST(Indexing, OneHotNegativeAndOutOfRangeIndices) {
  auto y = ok("OneHot", {vec<int64_t>({3}, {-1, 5, 0}), Tensor::scalar<float>(3), vec<int32_t>({2}, {0, 9})}, {}, 1, 11);
  EXPECT_TRUE(tensors_near(y[0], vec<int32_t>({3, 3}, {0, 0, 9, 0, 0, 0, 9, 0, 0})));
  auto z = ok("OneHot", {vec<int64_t>({2}, {1, 0}), vec<int64_t>({1}, {2}), vec<float>({2}, {0, 1})},
              {{"axis", int64_t(0)}}, 1, 11);
  EXPECT_TRUE(tensors_near(z[0], vec<float>({2, 2}, {0, 1, 1, 0})));
}

TEST(Indexing, NonZeroAllocatesDataDependentShape) {
  auto y = ok("NonZero", {vec<float>({2, 3}, {0, 1, 0, 2, 0, 3})});
  EXPECT_TRUE(tensors_near(y[0], vec<int64_t>({2, 3}, {0, 1, 1, 1, 0, 2})));
  auto none = ok("NonZero", {vec<int32_t>({4}, {0, 0, 0, 0})});
  EXPECT_EQ(none[0].dims(), (std::vector<int64_t>{1, 0}));
}

TEST(Indexing, CompressWithAndWithoutAxis) {
  Tensor x = vec<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto flat = ok("Compress", {x, vec<bool>({4}, {false, true, false, true})});
  EXPECT_TRUE(tensors_near(flat[0], vec<float>({2}, {2, 4})));
  auto cols = ok("Compress", {x, vec<bool>({2}, {true, false})}, {{"axis", int64_t(-1)}});
  EXPECT_TRUE(tensors_near(cols[0], vec<float>({2, 1}, {1, 4})));
  fails("Compress", {x, vec<bool>({3}, {false, false, true})}, {{"axis", int64_t(0)}}, "beyond the axis");
}

TEST(Indexing, TriluWithK) {
  Tensor x = vec<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto up = ok("Trilu", {x, Tensor::scalar<int64_t>(1)});
  EXPECT_TRUE(tensors_near(up[0], vec<int64_t>({2, 3}, {0, 2, 3, 0, 0, 6})));
  auto low = ok("Trilu", {x, Tensor::scalar<int64_t>(-1)}, {{"upper", int64_t(0)}});
  EXPECT_TRUE(tensors_near(low[0], vec<int64_t>({2, 3}, {0, 0, 0, 4, 0, 0})));
  fails("Trilu", {vec<int64_t>({3}, {1, 2, 3})}, {}, "rank >= 2");
}

TEST(Indexing, ReverseSequenceAndBadLengths) {
  Tensor x = vec<float>({3, 2}, {1, 2, 3, 4, 5, 6});  // [time, batch]
  auto y = ok("ReverseSequence", {x, vec<int64_t>({2}, {3, 2})}, {}, 1, 10);
  EXPECT_TRUE(tensors_near(y[0], vec<float>({3, 2}, {5, 4, 3, 2, 1, 6})));
  fails("ReverseSequence", {x, vec<int64_t>({2}, {4, 1})}, {}, "sequence length 4", 1, 10);
}

TEST(Indexing, UniqueUnsortedReportsAllFourOutputs) {
  auto y = ok("Unique", {vec<float>({6}, {2, 1, 1, 3, 4, 3})}, {{"sorted", int64_t(0)}}, 4, 11);
  EXPECT_TRUE(tensors_near(y[0], vec<float>({4}, {2, 1, 3, 4})));
  EXPECT_TRUE(tensors_near(y[1], vec<int64_t>({4}, {0, 1, 3, 4})));
  EXPECT_TRUE(tensors_near(y[2], vec<int64_t>({6}, {0, 1, 1, 2, 3, 2})));
  EXPECT_TRUE(tensors_near(y[3], vec<int64_t>({4}, {1, 2, 2, 1})));
}

TEST(Indexing, UniqueSortedRowsAlongAxis) {
  auto y = ok("Unique", {vec<int32_t>({3, 2}, {2, 0, 1, 5, 2, 0})}, {{"axis", int64_t(0)}}, 4, 11);
  EXPECT_TRUE(tensors_near(y[0], vec<int32_t>({2, 2}, {1, 5, 2, 0})));
  EXPECT_TRUE(tensors_near(y[1], vec<int64_t>({2}, {1, 0})));
  EXPECT_TRUE(tensors_near(y[2], vec<int64_t>({3}, {1, 0, 1})));
  EXPECT_TRUE(tensors_near(y[3], vec<int64_t>({2}, {1, 2})));
}

TEST(Indexing, TopKTiesKeepLowerIndexFirst) {
  Tensor x = vec<float>({1, 5}, {3, 1, 3, 2, 1});
  auto big = ok("TopK", {x, vec<int64_t>({1}, {3})}, {}, 2, 11);
  EXPECT_TRUE(tensors_near(big[0], vec<float>({1, 3}, {3, 3, 2})));
  EXPECT_TRUE(tensors_near(big[1], vec<int64_t>({1, 3}, {0, 2, 3})));
  auto small = ok("TopK", {x, vec<int64_t>({1}, {2})}, {{"largest", int64_t(0)}}, 2, 11);
  EXPECT_TRUE(tensors_near(small[1], vec<int64_t>({1, 2}, {1, 4})));
}

TEST(Indexing, TopKAttributeFormBeforeOpset10) {
  auto y = ok("TopK", {vec<float>({3, 1}, {1, 5, 2})}, {{"k", int64_t(1)}, {"axis", int64_t(0)}}, 2, 1);
  EXPECT_TRUE(tensors_near(y[0], vec<float>({1, 1}, {5})));
  EXPECT_TRUE(tensors_near(y[1], vec<int64_t>({1, 1}, {1})));
}

TEST(Indexing, TopKRejectsKLargerThanAxis) {
  fails("TopK", {vec<float>({2}, {1, 2}), vec<int64_t>({1}, {3})}, {}, "exceeds", 2, 11);
}

}  // namespace kiln::testing
