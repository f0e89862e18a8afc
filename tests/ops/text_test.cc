// TfIdfVectorizer: counting modes, weights, skips, 2-D batches and pool validation.
#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {

// Pool: unigrams {2}, {3} (ids 0, 1) and bigram {2, 3} (id 2), written to outputs 2, 0, 1.
std::map<std::string, AttrValue> pool(const std::string& mode, std::vector<float> weights = {}) {
  std::map<std::string, AttrValue> a{{"mode", mode},
                                     {"min_gram_length", int64_t(1)},
                                     {"max_gram_length", int64_t(2)},
                                     {"max_skip_count", int64_t(1)},
                                     {"ngram_counts", std::vector<int64_t>{0, 2}},
                                     {"ngram_indexes", std::vector<int64_t>{2, 0, 1}},
                                     {"pool_int64s", std::vector<int64_t>{2, 3, 2, 3}}};
  if (!weights.empty()) a["weights"] = weights;
  return a;
}

}  // namespace

TEST(Text, TfIdfCountsUnigramsOnceAndSkippedBigrams) {
  // Bigrams (2,3) at distance 1 (positions 0-1) and 2 (positions 0-2 and 3-5 is too far).
  Tensor x = Tensor::from_vector<int32_t>({6}, {2, 3, 3, 2, 7, 7});
  auto y = run_op("TfIdfVectorizer", {x}, pool("TF"), 1, 9);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], Tensor::from_vector<float>({3}, {2, 2, 2})));
}

TEST(Text, TfIdfWeightsAndBatches) {
  Tensor x = Tensor::from_vector<int64_t>({2, 3}, {2, 2, 9, 3, 9, 9});
  auto idf = run_op("TfIdfVectorizer", {x}, pool("IDF", {0.5f, 4, 8}), 1, 9);
  ASSERT_TRUE(idf.is_ok()) << idf.status().message();
  EXPECT_TRUE(tensors_near((*idf)[0], Tensor::from_vector<float>({2, 3}, {0, 0, 0.5f, 4, 0, 0})));
  auto tfidf = run_op("TfIdfVectorizer", {x}, pool("TFIDF", {0.5f, 4, 8}), 1, 9);
  ASSERT_TRUE(tfidf.is_ok()) << tfidf.status().message();
  EXPECT_TRUE(tensors_near((*tfidf)[0], Tensor::from_vector<float>({2, 3}, {0, 0, 1, 4, 0, 0})));
}

TEST(Text, TfIdfRejectsABadPool) {
  auto a = pool("TF");
  a["ngram_counts"] = std::vector<int64_t>{0, 1};  // the bigram block would have 3 entries
  auto y = run_op("TfIdfVectorizer", {Tensor::from_vector<int64_t>({2}, {2, 3})}, a, 1, 9);
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("TfIdfVectorizer_under_test"), std::string::npos);
  EXPECT_NE(y.status().message().find("ngram_counts[1]"), std::string::npos) << y.status().message();
  a = pool("BM25");
  EXPECT_FALSE(run_op("TfIdfVectorizer", {Tensor::from_vector<int64_t>({2}, {2, 3})}, a, 1, 9).is_ok());
}

}  // namespace kiln::testing
