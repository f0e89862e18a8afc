// The small proofs the rewrite passes (fuse_*, canonicalize_reshape) make about shapes; matching
// itself is the rewrite layer's (passes/rewrite).
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Two dims proven equal: the same number or the same named symbol ("batch" == "batch").
inline bool same_dim(const Dim& a, const Dim& b) { return a == b && (a.is_static() || a.is_symbolic()); }

// Equal shapes whose every dim is a number or a named symbol; unknown dims prove nothing.
inline bool same_known_shape(const Shape& a, const Shape& b) {
  if (!a.rank_known() || a != b) return false;
  for (const Dim& d : a.dims()) if (!d.is_static() && !d.is_symbolic()) return false;
  return true;
}

// Whether dim i (< rank - 1) of x is dim i of y because x is computed from y through ops that
// keep it (a Linear layer, bias Add, elementwise ops, LayerNormalization, 3-D Attention,
// kiln.PackedAttention, a Reshape whose constant target copies the leading dims), even when shape
// inference lost it.
bool keeps_leading_dims(const Value* x, const Value* y, size_t i, int depth = 0);

// Whether r has x's shape: every dim equal and known, or carried from r to x (keeps_leading_dims).
bool same_shape_by_construction(const Value* x, const Value* r);

}  // namespace kiln::passes
