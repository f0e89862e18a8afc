#include "quant/calibration_algorithms.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace kiln::quant {

namespace {
constexpr int kQuantLevels = 128;  // |x| in 8 bits, signed: 0..127 plus the sign
constexpr int kStartBin = 128;
}  // namespace

double amax_entropy(const AbsHistogram& h) {
  // As pytorch-quantization's _compute_amax_entropy: the first bin counts as the second, so the
  // exact zeros of a ReLU (often half of the tensor) do not decide the threshold.
  std::vector<double> bins = h.counts();
  if (bins.size() > 1) bins[0] = bins[1];
  const int n = static_cast<int>(bins.size());
  const double total = std::accumulate(bins.begin(), bins.end(), 0.0);
  if (total == 0 || h.range() == 0) return h.absmax();
  std::vector<double> suffix(n + 1, 0.0);  // suffix[i] = sum of bins[i:]
  for (int i = n - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + bins[i];
  std::vector<double> level_sum(kQuantLevels), level_nonzero(kQuantLevels);
  double best = std::numeric_limits<double>::infinity();
  int best_i = n;
  for (int i = kStartBin; i <= n; ++i) {
    std::fill(level_sum.begin(), level_sum.end(), 0.0);
    std::fill(level_nonzero.begin(), level_nonzero.end(), 0.0);
    for (int j = 0; j < i; ++j) {
      if (bins[j] == 0) continue;
      const int level = static_cast<int>(static_cast<int64_t>(j) * kQuantLevels / i);
      level_sum[level] += bins[j];
      level_nonzero[level] += 1;
    }
    // P: bins[:i], the outliers folded into the last bin; Q: each level's mean over its non-empty
    // bins. Both sum to the total count, so normalizing divides both by it.
    double kl = 0;
    for (int j = 0; j < i; ++j) {
      const double p = bins[j] + (j == i - 1 ? suffix[i] : 0.0);
      if (p == 0) continue;
      const int level = static_cast<int>(static_cast<int64_t>(j) * kQuantLevels / i);
      const double q = bins[j] == 0 ? 0.0 : level_sum[level] / level_nonzero[level];
      if (q == 0) { kl = std::numeric_limits<double>::infinity(); break; }
      // Q's normalization: its mass is the total minus the folded outliers.
      const double q_norm = q / (total - suffix[i]);
      kl += (p / total) * std::log((p / total) / q_norm);
    }
    if (kl <= best) {  // `<=`: the last i of least divergence, as pytorch-quantization picks
      best = kl;
      best_i = i;
    }
  }
  return std::min(best_i * h.bin_width(), h.absmax());  // the range may exceed absmax after growing
}

double amax_percentile(const AbsHistogram& h, double percentile) {
  const std::vector<double>& bins = h.counts();
  const double total = std::accumulate(bins.begin(), bins.end(), 0.0);
  if (total == 0 || h.range() == 0) return h.absmax();
  const double want = total * std::clamp(percentile, 0.0, 100.0) / 100.0;
  double cum = 0;
  for (size_t b = 0; b < bins.size(); ++b) {
    cum += bins[b];
    if (cum >= want && bins[b] > 0) return std::min((b + 1) * h.bin_width(), h.absmax());
  }
  return h.absmax();
}

double amax_mse(const AbsHistogram& h) {
  const std::vector<double>& bins = h.counts();
  const int n = static_cast<int>(bins.size());
  if (h.range() == 0) return h.absmax();
  const double w = h.bin_width();
  double best = std::numeric_limits<double>::infinity();
  int best_i = n;
  for (int i = kStartBin; i <= n; ++i) {
    const double amax = i * w, scale = amax / 127.0;
    double err = 0;
    for (int j = 0; j < n; ++j) {
      if (bins[j] == 0) continue;
      const double x = (j + 0.5) * w;
      const double q = std::min(std::nearbyint(x / scale), 127.0) * scale;
      err += bins[j] * (x - q) * (x - q);
    }
    if (err < best) {
      best = err;
      best_i = i;
    }
  }
  return std::min(best_i * w, h.absmax());
}

double compute_amax(const AbsHistogram& h, CalibrationAlgoType algo, double quantile) {
  switch (algo) {
    case CalibrationAlgoType::kMINMAX_CALIBRATION: return h.absmax();
    case CalibrationAlgoType::kPERCENTILE_CALIBRATION:
    case CalibrationAlgoType::kLEGACY_CALIBRATION: return amax_percentile(h, quantile);
    case CalibrationAlgoType::kMSE_CALIBRATION: return amax_mse(h);
    case CalibrationAlgoType::kENTROPY_CALIBRATION:
    case CalibrationAlgoType::kENTROPY_CALIBRATION_2: break;
  }
  return amax_entropy(h);
}

}  // namespace kiln::quant

namespace kiln {

const char* calibrationAlgoName(CalibrationAlgoType a) {
  switch (a) {
    case CalibrationAlgoType::kLEGACY_CALIBRATION: return "LegacyCalibration";
    case CalibrationAlgoType::kENTROPY_CALIBRATION: return "EntropyCalibration";
    case CalibrationAlgoType::kENTROPY_CALIBRATION_2: return "EntropyCalibration2";
    case CalibrationAlgoType::kMINMAX_CALIBRATION: return "MinMaxCalibration";
    case CalibrationAlgoType::kPERCENTILE_CALIBRATION: return "PercentileCalibration";
    case CalibrationAlgoType::kMSE_CALIBRATION: return "MSECalibration";
  }
  return "EntropyCalibration2";
}

}  // namespace kiln
