// The statistics calibration keeps of one tensor over all batches: the absolute maximum and a
// histogram of |x| with TensorRT's 2048 bins over [0, range). The range is set by the first
// batch that has a non-zero value; a later batch with a larger |x| grows it by a whole factor k
// and merges every k bins into one, so the counts stay exact (no re-binning error).
#pragma once
#include <cstddef>
#include <vector>

namespace kiln::quant {

constexpr int kHistogramBins = 2048;

class AbsHistogram {
 public:
  AbsHistogram() : counts_(kHistogramBins, 0.0) {}
  void add(const float* x, size_t n);
  double absmax() const { return absmax_; }
  double range() const { return range_; }
  double bin_width() const { return range_ / kHistogramBins; }
  const std::vector<double>& counts() const { return counts_; }
  // For tests: a histogram with given counts over [0, range).
  static AbsHistogram from_counts(std::vector<double> counts, double range, double absmax);

 private:
  void grow_to(double max);
  std::vector<double> counts_;
  double range_ = 0, absmax_ = 0;
  double zeros_before_range_ = 0;  // exact zeros seen while the range was still 0
};

}  // namespace kiln::quant
