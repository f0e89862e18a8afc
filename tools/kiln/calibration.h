// INT8 calibration flags (--calib, --calibImages, --calibData, --calibAlgo, --*ShapesCalib, ...)
// -> the Int8Calibrator handed to the builder.
#pragma once
#include <memory>

#include "tools/kiln/options.h"

namespace kiln::cli {

// The calibrator the build uses: the --calib cache when the file exists, else the data source
// (--calibImages / --calibData), whose new cache is kept in memory until the build succeeds.
class CliCalibrator : public Int8Calibrator {
 public:
  CliCalibrator(std::string cache_path, std::unique_ptr<Int8Calibrator> source, CalibrationAlgoType algo,
                double quantile);
  int getBatchSize() const noexcept override { return source_ ? source_->getBatchSize() : 1; }
  bool getBatch(void* bindings[], const char* names[], int n) noexcept override {
    return source_ && source_->getBatch(bindings, names, n);
  }
  const void* readCalibrationCache(size_t& length) noexcept override;
  void writeCalibrationCache(const void* cache, size_t length) noexcept override;
  CalibrationAlgoType getAlgorithm() noexcept override { return algo_; }
  double getQuantile() const noexcept override { return quantile_; }
  const char* getLastError() const noexcept override { return source_ ? source_->getLastError() : nullptr; }
  const char* getCacheSource() const noexcept override { return path_.empty() ? nullptr : path_.c_str(); }
  // After a successful build: writes the cache calibration made to --calib (temp file + rename).
  void save();

 private:
  std::string path_;
  std::unique_ptr<Int8Calibrator> source_;
  CalibrationAlgoType algo_;
  double quantile_;
  std::vector<char> read_, written_;
};

// Null when INT8 is off or there is nothing to calibrate from (the builder warns). Sets the
// calibration profile from --*ShapesCalib. Throws CliError for bad calibration input.
std::unique_ptr<CliCalibrator> make_calibrator(const Options& o, const Network& net, BuilderConfig& config);

}  // namespace kiln::cli
