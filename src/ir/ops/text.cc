// Op schemas of the text family: TfIdfVectorizer (integer n-grams; string inputs are not
// supported because kiln has no string tensors).
#include <algorithm>

#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

// Checks the n-gram pool attributes; every kernel-side index is derived from them, so a bad
// pool is an import-time error rather than an out-of-bounds read later.
Status check_tfidf_attrs(const InferContext& ctx) {
  const Node& n = ctx.node();
  if (n.has_attr("pool_strings")) return ctx.fail("string n-gram pools (pool_strings) are not supported");
  const std::string mode = n.attr_string("mode", "");
  if (mode != "TF" && mode != "IDF" && mode != "TFIDF")
    return ctx.fail("mode '", mode, "' is not one of TF, IDF, TFIDF");
  const int64_t min_n = n.attr_int("min_gram_length", 0), max_n = n.attr_int("max_gram_length", 0);
  if (min_n < 1 || max_n < min_n)
    return ctx.fail("needs 1 <= min_gram_length (", min_n, ") <= max_gram_length (", max_n, ")");
  if (n.attr_int("max_skip_count", 0) < 0) return ctx.fail("max_skip_count must be >= 0");
  const auto pool = n.attr_ints("pool_int64s"), counts = n.attr_ints("ngram_counts");
  const auto indexes = n.attr_ints("ngram_indexes");
  if (static_cast<int64_t>(counts.size()) < max_n)
    return ctx.fail("ngram_counts has ", counts.size(), " entries; max_gram_length is ", max_n);
  int64_t total = 0;  // number of n-grams in the pool
  for (size_t k = 0; k < counts.size(); ++k) {
    const int64_t start = counts[k];
    const int64_t end = k + 1 < counts.size() ? counts[k + 1] : static_cast<int64_t>(pool.size());
    if (start < 0 || end < start || end > static_cast<int64_t>(pool.size()) ||
        (end - start) % static_cast<int64_t>(k + 1) != 0)
      return ctx.fail("ngram_counts[", k, "] = ", start, " does not start a whole block of ", k + 1,
                      "-grams in pool_int64s (", pool.size(), " entries)");
    total += (end - start) / static_cast<int64_t>(k + 1);
  }
  if (static_cast<int64_t>(indexes.size()) != total)
    return ctx.fail("ngram_indexes has ", indexes.size(), " entries but the pool holds ", total, " n-grams");
  for (int64_t i : indexes)
    if (i < 0) return ctx.fail("ngram_indexes holds negative index ", i);
  const auto weights = n.attr_floats("weights");
  if (!weights.empty() && weights.size() != indexes.size())
    return ctx.fail("weights has ", weights.size(), " entries; ngram_indexes has ", indexes.size());
  return Status::ok();
}

// Output: float [C] for a 1-D input, [N, C] for [N, ...]; C = max(ngram_indexes) + 1.
Status infer_tfidf(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kInt32, DataType::kInt64}));
  KILN_RETURN_IF_ERROR(check_tfidf_attrs(ctx));
  int64_t width = 0;
  for (int64_t i : ctx.node().attr_ints("ngram_indexes")) width = std::max(width, i + 1);
  const Shape& in = ctx.input_shape(0);
  if (!in.rank_known()) {
    ctx.set_output(0, DataType::kFloat32, Shape::unknown_rank());
    return Status::ok();
  }
  if (in.rank() == 1) ctx.set_output(0, DataType::kFloat32, Shape({Dim(width)}));
  else if (in.rank() == 2) ctx.set_output(0, DataType::kFloat32, Shape({in[0], Dim(width)}));
  else return ctx.fail("input must be 1-D or 2-D, got rank ", in.rank());
  return Status::ok();
}

}  // namespace

void register_text_ops(OpRegistry& r) {
  OpSchema s;
  s.name = "TfIdfVectorizer";
  s.since_version = 9;
  s.min_inputs = s.max_inputs = 1;
  s.infer = infer_tfidf;
  r.add(std::move(s));
}

}  // namespace kiln
