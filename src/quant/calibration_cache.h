// The INT8 calibration cache in TensorRT's text format, read and written, so a cache written by
// TensorRT's calibrators works in kiln and the reverse:
//
//   TRT-8601-EntropyCalibration2          <- "TRT-<version>-<algorithm>"
//   input: 3c010a14                       <- "<tensor name>: <float32 scale, its bits as hex>"
//   conv1_out: 3d8d7e4f
//
// A tensor name may itself contain ": " (TensorRT's "(Unnamed Layer* 3) [Convolution]_output"),
// so a line splits at its last ": ". Errors name the source (the file) and the line.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace kiln::quant {

struct CalibrationCache {
  std::string version;    // "8601" in "TRT-8601-...": the writer's version, kept as read
  std::string algorithm;  // "EntropyCalibration2", "MinMaxCalibration", "LegacyCalibration", ...
  std::vector<std::pair<std::string, float>> scales;  // in file order; names unique
};

// Parses the text of a cache; `source` (the file's path) prefixes every error as "source:line: ".
Expected<CalibrationCache> parse_calibration_cache(std::string_view text, std::string_view source);
// The text TensorRT writes: header line, then one "name: %08x" line per tensor.
std::string format_calibration_cache(const CalibrationCache& cache);

}  // namespace kiln::quant
