// Parameter resolution shared by the shape family's schemas (src/ir/ops/shape*.cc) and CPU
// kernels (src/backends/cpu/kernels/shape*.cc): both must agree on how Reshape's 0/-1, Slice's
// clamping and Pad's pads are read, so the rules live here once.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "ir/op_registry.h"

namespace kiln {

// An integer list that came from an attribute (older opsets) or an input (newer ones).
struct IntList {
  bool present = false;  // the attribute or the input exists
  bool known = false;    // its value is known (always, for attributes)
  std::vector<int64_t> values;
};

// Reads attribute `attr` if the node has it, else input `input` (values[input], null when the
// value is not known yet). `values` holds one entry per node input.
Expected<IntList> read_ints(const Node& node, const std::vector<const Tensor*>& values, size_t input,
                            const char* attr);

// Reshape's target shape applied to `in`: 0 copies the input dim (unless allowzero), one -1 is
// inferred. Works on symbolic shapes; the result is static when `in` is.
Expected<Shape> reshape_shape(const Shape& in, const std::vector<int64_t>& target, bool allowzero);
// Same, for a target whose elements inference knows as dims (a shape tensor's dims value: numbers
// with 0 and -1 as above, symbols, unknown elements giving unknown dims).
Expected<Shape> reshape_shape(const Shape& in, const std::vector<Dim>& target, bool allowzero);

// One input dim of a Slice: output element k reads input index start + k * step.
struct SliceAxis {
  int64_t start = 0, step = 1;
  int64_t count = -1;  // output extent; -1 when the input dim is not known
  bool whole = true;   // the axis is not sliced (output dim = input dim)
};

// Resolves Slice's starts/ends/axes/steps over input dims (-1 = unknown dim) with the spec's
// clamping rules. Axes and steps may be absent (defaults: 0..n-1 and 1).
Expected<std::vector<SliceAxis>> resolve_slice(const std::vector<int64_t>& dims, const std::vector<int64_t>& starts,
                                               const std::vector<int64_t>& ends, const IntList& axes,
                                               const IntList& steps);

// Pad's pads as 2*rank numbers [begin_0.., end_0..], given the pads list and optional axes.
Expected<std::vector<int64_t>> full_pads(int64_t rank, const std::vector<int64_t>& pads, const IntList& axes);

// The known value of every input of an InferContext (null where absent or unknown), the form
// read_ints takes.
std::vector<const Tensor*> known_values(const InferContext& ctx);

// read_ints for an op schema's inference: the attribute, a constant input, or a computed shape
// tensor whose elements are all numbers (Slice's ends = Unsqueeze(Gather(Shape(x), 1))); an error
// names the node.
Expected<IntList> infer_ints(const InferContext& ctx, size_t input, const char* attr);

// Product of dims [begin, end): static when all are, the one symbol when the rest are 1s.
Dim dim_product(const std::vector<Dim>& dims, size_t begin, size_t end);

// Normalizes a list of axes into [0, rank), rejecting duplicates.
Expected<std::vector<int64_t>> normalize_axes(const std::vector<int64_t>& axes, int64_t rank);

}  // namespace kiln
