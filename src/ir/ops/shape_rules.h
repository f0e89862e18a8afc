// Shape-inference rules shared by many op families (broadcasting, axis normalization,
// "output is like input 0"). Op files compose these instead of re-deriving them.
#pragma once
#include <vector>

#include "ir/op_registry.h"

namespace kiln {

// Numpy-style multidirectional broadcast of symbolic shapes; fails on static mismatch.
Expected<Shape> broadcast_shapes(const std::vector<Shape>& shapes);
// Same, on static dims (used by kernels).
Expected<std::vector<int64_t>> broadcast_dims(const std::vector<std::vector<int64_t>>& dims);
// Maps a possibly negative axis into [0, rank); fails naming the node when out of range.
Expected<int64_t> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank);
Expected<int64_t> normalize_axis(int64_t axis, int64_t rank);
// Output 0 has input 0's type and shape (unary pointwise ops).
Status infer_same_as_input0(InferContext& ctx);
// Output 0 is input 0's type, broadcast over all present inputs' shapes.
Status infer_broadcast(InferContext& ctx);
// Output 0 is bool, broadcast over all inputs (comparisons).
Status infer_broadcast_bool(InferContext& ctx);
// Fails unless every present input in [first, last) has input `first`'s type.
Status require_same_types(const InferContext& ctx, size_t first, size_t last);
// Fails unless input i has one of `allowed` types (names the input and the type).
Status require_type(const InferContext& ctx, size_t i, std::initializer_list<DataType> allowed);
// Shape-tensor values (InferContext::input_dims_value): output 0 holds input 0's elements (Cast
// between integer types, Identity, a Squeeze/Unsqueeze that keeps rank <= 1).
void pass_dims_value(InferContext& ctx);
// Output 0 of the integer Add/Sub/Mul/Div of inputs 0 and 1, element by element (broadcasting
// one element): exact dim arithmetic (operator*, exact_div in core/shape.h), else unknown.
void binary_dims_value(InferContext& ctx, char op);
// Equal of two shape tensors (output bool, held as 1/0 dims): proven where both elements are
// numbers, the same symbol, or a size against a negative number; else unknown.
void equal_dims_value(InferContext& ctx);
// Where(cond, x, y) of shape tensors with a proven condition: the elements it picks. Together with
// equal_dims_value and ConstantOfShape this follows the exporters' Expand(x, Where(Equal(s, -1), 1, s)).
void where_dims_value(InferContext& ctx);
// Input i's shape-tensor elements when each is a size (a number >= 0 or a positive multiple of a
// symbol): a shape to make a tensor of.
std::optional<std::vector<Dim>> size_dims_value(const InferContext& ctx, size_t i);
// Reads an integer-list input (axes, shape, pads...) if its value is known.
Expected<std::vector<int64_t>> input_ints(const InferContext& ctx, size_t i);

}  // namespace kiln
