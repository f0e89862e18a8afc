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
