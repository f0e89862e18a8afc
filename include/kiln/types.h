// kiln public API: element types and dimensions.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

// Element types of I/O tensors; values are ONNX's TensorProto codes.
enum class TensorType : int32_t {
  kFLOAT = 1, kUINT8 = 2, kINT8 = 3, kUINT16 = 4, kINT16 = 5, kINT32 = 6, kINT64 = 7,
  kBOOL = 9, kHALF = 10, kDOUBLE = 11, kUINT32 = 12, kUINT64 = 13, kBF16 = 16,
};
size_t tensorTypeSize(TensorType t);
const char* tensorTypeName(TensorType t);

// Dimensions; -1 marks a dynamic dimension (shape ranges come from optimization profiles).
using Dims = std::vector<int64_t>;
std::string dimsToString(const Dims& d);  // "1x3x224x224"

enum class TensorIOMode { kNONE = 0, kINPUT = 1, kOUTPUT = 2 };

}  // namespace kiln
