// Op tables of the shape family: hand-made edge cases the conformance suite does not cover
// (older opset forms, clamping, negative pads, symbolic import-time shapes, views).
#include "ir/ops/shape_params.h"
#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {

using I64 = std::vector<int64_t>;

Tensor ints(const I64& v) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v); }
Tensor iota_f(const I64& dims) {
  Tensor t = Tensor::zeros(DataType::kFloat32, dims).value();
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = static_cast<float>(i);
  return t;
}

// Runs an op and returns output 0, failing the test on error.
Tensor run1(const std::string& op, const std::vector<Tensor>& in, std::map<std::string, AttrValue> attrs = {},
            int opset = 17) {
  auto y = run_op(op, in, std::move(attrs), 1, opset);
  EXPECT_TRUE(y.is_ok()) << y.status().message();
  return y.is_ok() ? (*y)[0] : Tensor();
}

std::string error_of(const std::string& op, const std::vector<Tensor>& in, std::map<std::string, AttrValue> attrs = {},
                     int opset = 17, size_t outputs = 1) {
  auto y = run_op(op, in, std::move(attrs), outputs, opset);
  return y.is_ok() ? "" : y.status().message();
}

// Import-time inference on symbolic shapes: input i has shapes[i] and, if given, a constant.
Expected<Shape> infer_symbolic(const std::string& op, const std::vector<Shape>& shapes, std::vector<const Tensor*> consts,
                               std::map<std::string, AttrValue> attrs = {},
                               DataType rest_type = DataType::kInt64) {
  Node n;
  n.name = "n";
  n.op_type = op;
  n.opset = 17;
  n.attrs = std::move(attrs);
  Value dummy;
  std::vector<InferContext::Input> ins;
  for (size_t i = 0; i < shapes.size(); ++i) {
    n.inputs.push_back(&dummy);
    const Tensor* c = i < consts.size() ? consts[i] : nullptr;
    ins.push_back({c ? c->dtype() : (i == 0 ? DataType::kFloat32 : rest_type), shapes[i], c, true});
  }
  n.outputs.push_back(&dummy);
  InferContext ctx(n, std::move(ins), 1);
  KILN_RETURN_IF_ERROR(infer_node(*OpRegistry::global().find("", op), ctx));
  return ctx.output(0).shape;
}

Dim sym(const char* s) { return Dim::symbol(s); }

}  // namespace

TEST(Shape, ReshapeZeroCopiesAndMinusOneInfers) {
  Tensor x = iota_f({2, 3, 4});
  Tensor y = run1("Reshape", {x, ints({0, -1})});
  EXPECT_EQ(y.dims(), (I64{2, 12}));
  EXPECT_EQ(y.raw(), x.raw()) << "Reshape must be a view";
}

TEST(Shape, ReshapeAllowZeroKeepsZero) {
  Tensor y = run1("Reshape", {Tensor::zeros(DataType::kFloat32, {0, 3}).value(), ints({3, 0})}, {{"allowzero", int64_t(1)}});
  EXPECT_EQ(y.dims(), (I64{3, 0}));
}

TEST(Shape, ReshapeRejectsBadTargets) {
  EXPECT_NE(error_of("Reshape", {iota_f({2, 3}), ints({-1, -1})}).find("more than one -1"), std::string::npos);
  EXPECT_NE(error_of("Reshape", {iota_f({2, 3}), ints({4, 2})}).find("element counts differ"), std::string::npos);
  EXPECT_NE(error_of("Reshape", {iota_f({2, 3}), ints({0, 0, 0})}).find("rank"), std::string::npos);
}

TEST(Shape, ReshapeOpset1ReadsShapeAttribute) {
  Tensor y = run1("Reshape", {iota_f({2, 3})}, {{"shape", I64{3, 2}}}, 1);
  EXPECT_EQ(y.dims(), (I64{3, 2}));
}

TEST(Shape, ReshapeSymbolicInference) {
  Tensor t1 = ints({0, -1}), t2 = ints({-1, 3, 4}), t3 = ints({-1, 4});
  auto a = infer_symbolic("Reshape", {Shape{sym("N"), 3, 4}, Shape{2}}, {nullptr, &t1});
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ(*a, (Shape{sym("N"), 12}));
  auto b = infer_symbolic("Reshape", {Shape{sym("N"), 12}, Shape{3}}, {nullptr, &t2});
  EXPECT_EQ(*b, (Shape{sym("N"), 3, 4}));
  auto c = infer_symbolic("Reshape", {Shape{sym("N"), 3, 4}, Shape{2}}, {nullptr, &t3});
  EXPECT_EQ(*c, (Shape{Dim::symbol("N", 3), 4}));  // 3*N: N x 3 x 4 elements in rows of 4
  auto d = infer_symbolic("Reshape", {Shape{sym("N"), 3}, Shape{4}}, {});
  EXPECT_EQ(*d, (Shape(std::vector<Dim>(4))));
}

TEST(Shape, FlattenAndSqueezeAreViews) {
  Tensor x = iota_f({1, 3, 1, 2});
  Tensor f = run1("Flatten", {x}, {{"axis", int64_t(0)}});
  EXPECT_EQ(f.dims(), (I64{1, 6}));
  EXPECT_EQ(f.raw(), x.raw());
  Tensor s = run1("Squeeze", {x});
  EXPECT_EQ(s.dims(), (I64{3, 2}));
  EXPECT_EQ(s.raw(), x.raw());
}

TEST(Shape, SqueezeAndUnsqueezeOldOpsetAttributes) {
  EXPECT_EQ(run1("Squeeze", {iota_f({1, 3, 1})}, {{"axes", I64{-1}}}, 11).dims(), (I64{1, 3}));
  EXPECT_EQ(run1("Unsqueeze", {iota_f({3})}, {{"axes", I64{2, 0}}}, 11).dims(), (I64{1, 3, 1}));
  EXPECT_NE(error_of("Squeeze", {iota_f({2, 3}), ints({0})}).find("not 1"), std::string::npos);
  EXPECT_NE(error_of("Unsqueeze", {iota_f({3}), ints({0, 0})}).find("repeated"), std::string::npos);
}

TEST(Shape, SymbolicSqueezeUnsqueezeTransposeConcat) {
  Tensor ax = ints({1});
  EXPECT_EQ(*infer_symbolic("Squeeze", {Shape{sym("N"), 1, sym("T")}, Shape{1}}, {nullptr, &ax}),
            (Shape{sym("N"), sym("T")}));
  EXPECT_EQ(*infer_symbolic("Unsqueeze", {Shape{sym("N"), sym("T")}, Shape{1}}, {nullptr, &ax}),
            (Shape{sym("N"), 1, sym("T")}));
  EXPECT_EQ(*infer_symbolic("Transpose", {Shape{sym("N"), 3, sym("T")}}, {}), (Shape{sym("T"), 3, sym("N")}));
  EXPECT_EQ(*infer_symbolic("Concat", {Shape{sym("N"), 3}, Shape{sym("N"), 5}}, {}, {{"axis", int64_t(1)}}, DataType::kFloat32),
            (Shape{sym("N"), 8}));
  EXPECT_EQ(*infer_symbolic("Concat", {Shape{sym("N"), 3}, Shape{2, 3}}, {}, {{"axis", int64_t(0)}}, DataType::kFloat32),
            (Shape{Dim::unknown(), 3}));
  // Squeeze without axes cannot know whether a symbolic dim is 1.
  EXPECT_FALSE(infer_symbolic("Squeeze", {Shape{sym("N"), 1}}, {})->rank_known());
}

TEST(Shape, TransposeDefaultReverses) {
  Tensor y = run1("Transpose", {iota_f({2, 3})});
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({3, 2}, {0, 3, 1, 4, 2, 5})));
  EXPECT_NE(error_of("Transpose", {iota_f({2, 3})}, {{"perm", I64{0, 0}}}).find("permutation"), std::string::npos);
}

TEST(Shape, ConcatWithEmptyInput) {
  Tensor y = run1("Concat", {iota_f({2, 0}), iota_f({2, 2})}, {{"axis", int64_t(1)}});
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({2, 2}, {0, 1, 2, 3})));
  EXPECT_NE(error_of("Concat", {iota_f({2, 3}), iota_f({3, 3})}, {{"axis", int64_t(1)}}), "");
}

TEST(Shape, SplitForms) {
  // Opset 18 num_outputs: the last chunk is smaller.
  auto a = run_op("Split", {iota_f({5})}, {{"num_outputs", int64_t(2)}}, 2, 18);
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_TRUE(tensors_near((*a)[1], Tensor::from_vector<float>({2}, {3, 4})));
  // Opset 11 split attribute, with a zero-size part.
  auto b = run_op("Split", {iota_f({4})}, {{"split", I64{0, 4}}}, 2, 11);
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ((*b)[0].numel(), 0);
  EXPECT_TRUE(tensors_near((*b)[1], iota_f({4})));
  EXPECT_NE(error_of("Split", {iota_f({5})}, {}, 13, 2).find("equal parts"), std::string::npos);
  EXPECT_NE(error_of("Split", {iota_f({5}), ints({1, 2})}, {}, 13, 2).find("add up"), std::string::npos);
}

TEST(Shape, SliceNegativeStepsAndClamping) {
  Tensor x = iota_f({5});
  Tensor y = run1("Slice", {x, ints({-1}), ints({INT64_MIN}), ints({0}), ints({-2})});
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({3}, {4, 2, 0})));
  Tensor z = run1("Slice", {x, ints({10}), ints({20})});
  EXPECT_EQ(z.dims(), (I64{0}));
  Tensor w = run1("Slice", {x, ints({2}), ints({-10}), Tensor(), ints({-1})});
  EXPECT_TRUE(tensors_near(w, Tensor::from_vector<float>({3}, {2, 1, 0})));
  EXPECT_NE(error_of("Slice", {x, ints({0}), ints({1}), ints({0}), ints({0})}).find("step"), std::string::npos);
}

TEST(Shape, SliceOpset1Attributes) {
  Tensor y = run1("Slice", {iota_f({2, 4})}, {{"starts", I64{1}}, {"ends", I64{3}}, {"axes", I64{1}}}, 1);
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({2, 2}, {1, 2, 5, 6})));
}

TEST(Shape, PadModes) {
  Tensor x = iota_f({3});  // 0 1 2
  EXPECT_TRUE(tensors_near(run1("Pad", {x, ints({2, 2})}, {{"mode", std::string("reflect")}}),
                           Tensor::from_vector<float>({7}, {2, 1, 0, 1, 2, 1, 0})));
  EXPECT_TRUE(tensors_near(run1("Pad", {x, ints({1, 2})}, {{"mode", std::string("edge")}}),
                           Tensor::from_vector<float>({6}, {0, 0, 1, 2, 2, 2})));
  EXPECT_TRUE(tensors_near(run1("Pad", {x, ints({1, 0}), Tensor::scalar<float>(9)}),
                           Tensor::from_vector<float>({4}, {9, 0, 1, 2})));
  // Negative pads crop.
  EXPECT_TRUE(tensors_near(run1("Pad", {x, ints({-1, 1})}), Tensor::from_vector<float>({3}, {1, 2, 0})));
  EXPECT_NE(error_of("Pad", {x, ints({-2, -2})}).find("below 0"), std::string::npos);
}

TEST(Shape, PadOldAttributesAndAxes) {
  EXPECT_TRUE(tensors_near(run1("Pad", {iota_f({2})}, {{"pads", I64{1, 0}}, {"value", 5.0f}}, 2),
                           Tensor::from_vector<float>({3}, {5, 0, 1})));
  Tensor y = run1("Pad", {iota_f({1, 2}), ints({1, 1}), Tensor(), ints({-1})}, {}, 18);
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({1, 4}, {0, 0, 1, 0})));
}

TEST(Shape, ExpandAndTile) {
  Tensor x = Tensor::from_vector<float>({2, 1}, {1, 2});
  EXPECT_TRUE(tensors_near(run1("Expand", {x, ints({1, 2})}), Tensor::from_vector<float>({2, 2}, {1, 1, 2, 2})));
  EXPECT_EQ(run1("Expand", {x, ints({3, 1, 1})}).dims(), (I64{3, 2, 1}));
  EXPECT_NE(error_of("Expand", {iota_f({3}), ints({2})}), "");
  EXPECT_TRUE(tensors_near(run1("Tile", {x, ints({2, 2})}),
                           Tensor::from_vector<float>({4, 2}, {1, 1, 2, 2, 1, 1, 2, 2})));
  EXPECT_EQ(run1("Tile", {x, ints({0, 1})}).dims(), (I64{0, 1}));
  EXPECT_NE(error_of("Tile", {x, ints({2})}).find("repeats"), std::string::npos);
}

TEST(Shape, ShapeSizeAndConstants) {
  Tensor x = iota_f({2, 3, 4});
  EXPECT_TRUE(tensors_near(run1("Shape", {x}, {{"start", int64_t(-2)}}), ints({3, 4})));
  EXPECT_EQ(run1("Shape", {x}, {{"start", int64_t(2)}, {"end", int64_t(1)}}).dims(), (I64{0}));
  EXPECT_TRUE(tensors_near(run1("Size", {x}), Tensor::scalar<int64_t>(24)));
  Tensor c = run1("ConstantOfShape", {ints({2, 2})}, {{"value", Tensor::from_vector<int32_t>({1}, {7})}});
  EXPECT_TRUE(tensors_near(c, Tensor::from_vector<int32_t>({2, 2}, {7, 7, 7, 7})));
  EXPECT_EQ(run1("ConstantOfShape", {ints({})}).dims(), I64{});
}

TEST(Shape, RangeAndEyeLike) {
  EXPECT_TRUE(tensors_near(run1("Range", {Tensor::scalar<int32_t>(10), Tensor::scalar<int32_t>(4), Tensor::scalar<int32_t>(-3)}),
                           Tensor::from_vector<int32_t>({2}, {10, 7})));
  EXPECT_EQ(run1("Range", {Tensor::scalar<float>(0), Tensor::scalar<float>(1), Tensor::scalar<float>(0.3f)}).dims(), (I64{4}));
  EXPECT_NE(error_of("Range", {Tensor::scalar<int64_t>(0), Tensor::scalar<int64_t>(1), Tensor::scalar<int64_t>(0)}), "");
  Tensor e = run1("EyeLike", {Tensor::zeros(DataType::kInt32, {2, 3}).value()}, {{"k", int64_t(-1)}});
  EXPECT_TRUE(tensors_near(e, Tensor::from_vector<int32_t>({2, 3}, {0, 0, 0, 1, 0, 0})));
}

TEST(Shape, DepthToSpaceInvertsSpaceToDepth) {
  Tensor x = iota_f({1, 2, 4, 6});
  Tensor d = run1("SpaceToDepth", {x}, {{"blocksize", int64_t(2)}});
  EXPECT_EQ(d.dims(), (I64{1, 8, 2, 3}));
  EXPECT_TRUE(tensors_near(run1("DepthToSpace", {d}, {{"blocksize", int64_t(2)}}), x));
  EXPECT_NE(error_of("DepthToSpace", {iota_f({1, 3, 2, 2})}, {{"blocksize", int64_t(2)}}).find("multiple"), std::string::npos);
}

TEST(Shape, DropoutInference) {
  Tensor x = iota_f({3});
  auto a = run_op("Dropout", {x, Tensor::scalar<float>(0.5f)}, {}, 2, 13);
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ((*a)[0].raw(), x.raw());
  EXPECT_TRUE(tensors_near((*a)[1], Tensor::from_vector<bool>({3}, {true, true, true})));
  // Training with ratio 0 is still the identity.
  auto b = run_op("Dropout", {x, Tensor::scalar<float>(0.0f), Tensor::scalar<bool>(true)}, {}, 2, 13);
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_TRUE(tensors_near((*b)[0], x));
  // Before opset 10 the mask has the input's type.
  auto c = run_op("Dropout", {x}, {}, 2, 7);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ((*c)[1].dtype(), DataType::kFloat32);
}

}  // namespace kiln::testing

namespace kiln::testing {

TEST(Shape, CenterCropPadCropsAndPadsAroundTheCenter) {
  // [3, 4] -> [2, 6]: rows 0..1 kept (odd crop drops the last), columns padded 1 + 1.
  Tensor y = run1("CenterCropPad", {iota_f({3, 4}), ints({2, 6})}, {}, 18);
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({2, 6}, {0, 0, 1, 2, 3, 0, 0, 4, 5, 6, 7, 0})));
  Tensor z = run1("CenterCropPad", {iota_f({3, 4}), ints({2})}, {{"axes", I64{-1}}}, 18);
  EXPECT_TRUE(tensors_near(z, Tensor::from_vector<float>({3, 2}, {1, 2, 5, 6, 9, 10})));
  EXPECT_NE(error_of("CenterCropPad", {iota_f({3, 4}), ints({2, 2, 2})}, {}, 18), "");
}

TEST(Shape, PadWrapRepeatsTheInput) {
  Tensor y = run1("Pad", {iota_f({3}), ints({2, 1})}, {{"mode", std::string("wrap")}}, 19);
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({6}, {1, 2, 0, 1, 2, 0})));
}

TEST(Shape, SpaceToDepthCrdKeepsChannelsOutermost) {
  // [1, 2, 2, 2], blocksize 2: CRD output channel c * 4 + b1 * 2 + b2.
  Tensor y = run1("SpaceToDepth", {iota_f({1, 2, 2, 2})}, {{"blocksize", int64_t(2)}, {"mode", std::string("CRD")}}, 24);
  EXPECT_TRUE(tensors_near(y, Tensor::from_vector<float>({1, 8, 1, 1}, {0, 1, 2, 3, 4, 5, 6, 7})));
}

}  // namespace kiln::testing
