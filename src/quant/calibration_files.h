// Files of the built-in calibration data sources: a directory's files by extension, whole-file
// reads, and .npy (NumPy's format, versions 1-3: C order, little-endian or byte types).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "kiln/types.h"

namespace kiln::quant {

// The regular files of `dir` whose extension (after the last '.', case-insensitive) is one of
// `extensions`, sorted by name; an error when the directory cannot be read.
Expected<std::vector<std::string>> list_files(const std::string& dir, const std::vector<std::string>& extensions);
Expected<std::vector<uint8_t>> read_file(const std::string& path);

struct NpyArray {
  TensorType type = TensorType::kFLOAT;
  Dims shape;
  std::vector<uint8_t> data;  // little-endian elements
};
// `bytes` of a .npy file; errors name `path`.
Expected<NpyArray> parse_npy(const std::vector<uint8_t>& bytes, const std::string& path);

}  // namespace kiln::quant

#include "kiln/calibrator.h"

namespace kiln::quant {

// What the built-in data sources share: the algorithm they were given, no cache of their own,
// and the error of the last getBatch().
class DataSourceCalibrator : public Int8Calibrator {
 public:
  DataSourceCalibrator(CalibrationAlgoType algo, double quantile) : algo_(algo), quantile_(quantile) {}
  CalibrationAlgoType getAlgorithm() noexcept override { return algo_; }
  double getQuantile() const noexcept override { return quantile_; }
  const char* getLastError() const noexcept override { return error_.empty() ? nullptr : error_.c_str(); }
  const void* readCalibrationCache(size_t& length) noexcept override {
    length = 0;
    return nullptr;
  }
  void writeCalibrationCache(const void*, size_t) noexcept override {}

 protected:
  bool fail(std::string m) {
    error_ = std::move(m);
    return false;
  }
  std::string error_;

 private:
  CalibrationAlgoType algo_;
  double quantile_;
};

}  // namespace kiln::quant
