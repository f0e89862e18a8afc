// ShapeProver: proves what Reshape targets and shape arithmetic mean, for the passes that match
// exported attention (fuse_mha). A dim is a Term, a number times at most one unknown dim (the
// batch, say); unknown dims are traced back through the ops that carry them (Transpose, Reshape,
// Unsqueeze/Squeeze, Gather, MatMul, Gemm, broadcasting constants, LayerNormalization...) so
// that two references to one dim get one name. Shape tensors built by Shape/Gather/Slice/Concat/
// Mul/Div/Cast are evaluated to Terms; a constant Reshape target's 0 and -1 are resolved. Every
// answer is a proof or nothing (std::nullopt): products of two unknown dims, inexact divisions
// and unknown ops give nothing.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

// coef * root: root "" is a plain number, otherwise the name of one unknown dim.
struct Term {
  int64_t coef = 1;
  std::string root;
  bool operator==(const Term& o) const { return coef == o.coef && root == o.root; }
};
using Dims = std::vector<Term>;

std::optional<Term> mul(const Term& a, const Term& b);     // none for a product of two unknown dims
std::optional<Term> divide(const Term& a, const Term& b);  // exact only
std::optional<Term> product(const Dims& d);
// An integer constant's elements (empty when v is no constant); huge values clamp to +-2^62.
std::vector<int64_t> ints_of(const Value* v);

// Symbolic shapes of values and symbolic values of shape tensors (memoized per instance: use one
// per pass run, on a graph that does not change meanwhile).
class ShapeProver {
 public:
  // The dims of v (its static dims as numbers).
  std::optional<Dims> dims_of(const Value* v, int depth = 0);
  // The value of a 1-D (or scalar) int64 shape tensor.
  std::optional<Dims> eval(const Value* v, int depth = 0);
  // A scalar computed from constants and known dims (the exporters' scale arithmetic).
  std::optional<double> number(const Value* v, int depth = 0);

 private:
  std::optional<Dims> derive(const Value* v, int depth);
  std::map<const Value*, std::optional<Dims>> memo_;
};

}  // namespace kiln::passes
