#include "quant/histogram.h"

#include <algorithm>
#include <cmath>

namespace kiln::quant {

AbsHistogram AbsHistogram::from_counts(std::vector<double> counts, double range, double absmax) {
  AbsHistogram h;
  counts.resize(kHistogramBins, 0.0);
  h.counts_ = std::move(counts);
  h.range_ = range;
  h.absmax_ = absmax;
  return h;
}

void AbsHistogram::grow_to(double max) {
  if (range_ == 0) {
    range_ = max;
    counts_[0] += zeros_before_range_;
    zeros_before_range_ = 0;
    return;
  }
  const double k = std::ceil(max / range_);
  const size_t merge = k >= kHistogramBins ? kHistogramBins : static_cast<size_t>(k);
  std::vector<double> next(kHistogramBins, 0.0);
  for (size_t b = 0; b < counts_.size(); ++b) next[b / merge] += counts_[b];
  counts_ = std::move(next);
  range_ *= static_cast<double>(merge);
  if (range_ < max) range_ = max;  // k beyond the bin count: everything lands in bin 0 anyway
}

void AbsHistogram::add(const float* x, size_t n) {
  double max = 0;
  size_t nonfinite = 0;
  for (size_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (!std::isfinite(a)) { ++nonfinite; continue; }
    max = std::max(max, double(a));
  }
  absmax_ = std::max(absmax_, max);
  if (max == 0) {
    (range_ == 0 ? zeros_before_range_ : counts_[0]) += static_cast<double>(n - nonfinite);
    return;
  }
  if (max > range_) grow_to(max);
  const double per_unit = kHistogramBins / range_;
  for (size_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (!std::isfinite(a)) continue;
    size_t b = static_cast<size_t>(double(a) * per_unit);
    counts_[std::min<size_t>(b, kHistogramBins - 1)] += 1;
  }
}

}  // namespace kiln::quant
