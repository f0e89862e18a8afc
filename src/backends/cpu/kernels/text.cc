// CPU kernels of the text family: TfIdfVectorizer over int32/int64 token ids.
//
// Each row (the whole input when it is 1-D) is scanned for the pool's n-grams: an n-gram is
// n tokens at positions start, start + d, ..., start + (n-1)d for every skip distance
// d = 1 .. max_skip_count + 1. Unigrams ignore the distance, so they are counted once (d = 1),
// as the ONNX reference and ONNX Runtime do. The schema has validated the pool attributes.
#include <map>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

// The pool as lookup tables: by_length[n-1] maps an n-gram's tokens to its n-gram id.
using NgramTable = std::vector<std::map<std::vector<int64_t>, size_t>>;

NgramTable build_pool(const Node& n) {
  const auto pool = n.attr_ints("pool_int64s"), counts = n.attr_ints("ngram_counts");
  NgramTable table(counts.size());
  size_t id = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    const size_t len = k + 1;
    const size_t end = k + 1 < counts.size() ? static_cast<size_t>(counts[k + 1]) : pool.size();
    for (size_t p = static_cast<size_t>(counts[k]); p + len <= end; p += len)
      table[k].emplace(std::vector<int64_t>(pool.begin() + p, pool.begin() + p + len), id++);
  }
  return table;
}

// Adds to `freq` (one count per n-gram id) the n-grams found in row[0, len).
void count_ngrams(const int64_t* row, int64_t len, const Node& n, const NgramTable& table,
                  std::vector<int64_t>& freq) {
  const int64_t min_n = n.attr_int("min_gram_length", 1), max_n = n.attr_int("max_gram_length", 1);
  const int64_t max_skip = n.attr_int("max_skip_count", 0);
  std::vector<int64_t> gram;
  for (int64_t skip = 0; skip <= max_skip; ++skip) {
    const int64_t step = skip + 1;
    for (int64_t start = 0; start < len; ++start) {
      gram.clear();
      for (int64_t size = 1; size <= max_n; ++size) {
        const int64_t pos = start + (size - 1) * step;
        if (pos >= len) break;
        gram.push_back(row[pos]);
        if (size < min_n || (size == 1 && skip > 0)) continue;
        const auto& level = table[size - 1];
        if (auto it = level.find(gram); it != level.end()) ++freq[it->second];
      }
    }
  }
}

Status tfidf_vectorizer(KernelContext& ctx) {
  const Node& n = ctx.node();
  const Tensor& x = ctx.input(0);
  auto tokens = x.to_int64_vector();
  if (!tokens) return ctx.fail(tokens.status().message());
  const NgramTable table = build_pool(n);
  const auto indexes = n.attr_ints("ngram_indexes");
  const auto weights = n.attr_floats("weights");
  const std::string mode = n.attr_string("mode", "TF");
  Tensor& y = ctx.output(0);
  const int64_t rows = x.rank() == 2 ? x.dim(0) : 1;
  const int64_t len = x.rank() == 2 ? x.dim(1) : x.numel();
  const int64_t width = y.rank() == 2 ? y.dim(1) : y.numel();
  float* out = y.mutable_data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> freq(indexes.size(), 0);
    count_ngrams(tokens->data() + r * len, len, n, table, freq);
    for (size_t id = 0; id < freq.size(); ++id) {
      if (freq[id] == 0) continue;
      const float w = weights.empty() ? 1.0f : weights[id];
      const float v = mode == "TF" ? static_cast<float>(freq[id])
                    : mode == "IDF" ? w
                                    : static_cast<float>(freq[id]) * w;
      out[r * width + indexes[id]] += v;
    }
  }
  return Status::ok();
}

}  // namespace

void register_text_kernels(KernelTable& t) { t.add("", "TfIdfVectorizer", tfidf_vectorizer); }

}  // namespace kiln::cpu
