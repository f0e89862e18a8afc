#include "quant/calibration_algorithms.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "quant/histogram.h"

namespace kiln::quant {
namespace {

// 1e6 standard normal values and `outliers` values at +-50: the histogram spans [0, 50).
AbsHistogram gaussian_with_outliers(int outliers = 20) {
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> x(1000000);
  for (float& v : x) v = n(rng);
  for (int i = 0; i < outliers; ++i) x[i * 1000] = i % 2 ? 50.f : -50.f;
  AbsHistogram h;
  h.add(x.data(), x.size() / 2);
  h.add(x.data() + x.size() / 2, x.size() / 2);
  return h;
}

TEST(CalibrationAlgorithms, MinMaxIsTheAbsoluteMaximum) {
  AbsHistogram h = gaussian_with_outliers();
  EXPECT_EQ(compute_amax(h, CalibrationAlgoType::kMINMAX_CALIBRATION, 99.99), 50.0);
}

TEST(CalibrationAlgorithms, EntropyClipsTheOutliers) {
  AbsHistogram h = gaussian_with_outliers();
  const double amax = compute_amax(h, CalibrationAlgoType::kENTROPY_CALIBRATION_2, 99.99);
  EXPECT_GT(amax, 2.5);   // keeps the bulk of the Gaussian
  EXPECT_LT(amax, 10.0);  // far below the outliers at 50
}

TEST(CalibrationAlgorithms, PercentileOfAHalfNormal) {
  AbsHistogram h = gaussian_with_outliers();
  // P(|x| > t) = 1e-4 for t = 3.89 (a standard normal); the bins are 50 / 2048 = 0.024 wide.
  EXPECT_NEAR(amax_percentile(h, 99.99), 3.89, 0.1);
  EXPECT_NEAR(amax_percentile(h, 99.0), 2.576, 0.05);
  EXPECT_EQ(amax_percentile(h, 100.0), 50.0);
}

// MSE weighs each clipped value by its squared distance, against the rounding noise
// (amax / 127)^2 / 12 of every value kept: without outliers it clips the Gaussian's tail near 4
// sigma; 2 outliers at 50 in 1e6 values pull the optimum to about 12 (clip error 2 * 38^2 against
// 1e6 * (12.4 / 127)^2 / 12), 20 outliers keep nearly the whole range.
TEST(CalibrationAlgorithms, MseBalancesClippingAndRounding) {
  auto mse = [](int outliers) {
    return compute_amax(gaussian_with_outliers(outliers), CalibrationAlgoType::kMSE_CALIBRATION, 99.99);
  };
  const double none = mse(0), few = mse(2), many = mse(20);
  EXPECT_GT(none, 3.0);
  EXPECT_LT(none, 6.0);
  EXPECT_GT(few, 8.0);
  EXPECT_LT(few, 20.0);
  EXPECT_GT(many, 30.0);
  EXPECT_LT(many, 50.0);
}

// The thresholds pytorch-quantization's _compute_amax_entropy (the published description of
// TensorRT's EntropyCalibration2) picks on the same histograms, computed with numpy: bin edges
// 1025 and 1109 of 2048 over [0, 8).
TEST(CalibrationAlgorithms, EntropyMatchesTheReferenceImplementation) {
  std::vector<double> gauss(kHistogramBins), expo(kHistogramBins);
  for (int j = 0; j < kHistogramBins; ++j) {
    gauss[j] = std::round(1e6 * std::exp(-(j / 300.0) * (j / 300.0)));
    expo[j] = std::round(1e5 * std::exp(-j / 100.0));
  }
  gauss[2000] += 5;
  expo[1500] += 3;
  EXPECT_DOUBLE_EQ(amax_entropy(AbsHistogram::from_counts(gauss, 8.0, 8.0)), 1025 * 8.0 / 2048);
  EXPECT_DOUBLE_EQ(amax_entropy(AbsHistogram::from_counts(expo, 8.0, 8.0)), 1109 * 8.0 / 2048);
}

// As the reference: the first bin counts as the second, so a ReLU's exact zeros (a spike at 0 of
// any height) leave the threshold where the rest of the distribution puts it.
TEST(CalibrationAlgorithms, EntropyIgnoresTheZeroSpike) {
  std::vector<double> gauss(kHistogramBins);
  for (int j = 0; j < kHistogramBins; ++j) gauss[j] = std::round(1e6 * std::exp(-(j / 300.0) * (j / 300.0)));
  gauss[2000] += 5;
  std::vector<double> relu = gauss;
  relu[0] = 1e9;
  EXPECT_DOUBLE_EQ(amax_entropy(AbsHistogram::from_counts(relu, 8.0, 8.0)),
                   amax_entropy(AbsHistogram::from_counts(gauss, 8.0, 8.0)));
}

TEST(CalibrationAlgorithms, AllZeroTensorHasZeroThreshold) {
  std::vector<float> z(100, 0.f);
  AbsHistogram h;
  h.add(z.data(), z.size());
  for (auto a : {CalibrationAlgoType::kENTROPY_CALIBRATION_2, CalibrationAlgoType::kMINMAX_CALIBRATION,
                 CalibrationAlgoType::kPERCENTILE_CALIBRATION, CalibrationAlgoType::kMSE_CALIBRATION})
    EXPECT_EQ(compute_amax(h, a, 99.99), 0.0);
}

TEST(AbsHistogram, GrowsByMergingWholeBins) {
  AbsHistogram h;
  std::vector<float> a = {0.f, 0.f, 1.f, -0.5f, 0.25f};  // zeros before the range is known count too
  std::vector<float> first = {0.f};
  h.add(first.data(), 1);
  h.add(a.data(), a.size());
  EXPECT_EQ(h.range(), 1.0);
  std::vector<float> b = {2.5f, -NAN};
  h.add(b.data(), b.size());
  EXPECT_EQ(h.range(), 3.0);  // 1 grown by k = ceil(2.5 / 1)
  EXPECT_EQ(h.absmax(), 2.5);
  const auto& c = h.counts();
  EXPECT_EQ(std::accumulate(c.begin(), c.end(), 0.0), 7.0);  // the NaN is not counted
  EXPECT_EQ(c[0], 3.0);                                      // the three zeros
  EXPECT_EQ(c[static_cast<size_t>(0.25 / 3.0 * 2048)], 1.0);  // 0.25 lands in its exact merged bin
  EXPECT_EQ(c[static_cast<size_t>(2.5 / 3.0 * 2048)], 1.0);
}

}  // namespace
}  // namespace kiln::quant
