// Public API odds and ends: StderrLogger, TensorType names, Dims printing.
#include <cstdio>

#include "core/dtype.h"
#include "kiln/builder.h"
#include "kiln/logger.h"
#include "kiln/types.h"

namespace kiln {

void StderrLogger::log(Severity severity, const char* message) noexcept {
  if (severity > level_) return;
  static const char* tags[] = {"F", "E", "W", "I", "V"};
  std::fprintf(stderr, "[%s] %s\n", tags[static_cast<int>(severity)], message);
}

size_t tensorTypeSize(TensorType t) { return dtype_size(static_cast<DataType>(t)); }
const char* tensorTypeName(TensorType t) { return dtype_name(static_cast<DataType>(t)); }

const char* backendName(BackendKind b) {
  switch (b) {
    case BackendKind::kCPU: return "cpu";
    case BackendKind::kCUDA: return "cuda";
    default: return "auto";
  }
}

std::string dimsToString(const Dims& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "x" : "") + std::to_string(d[i]);
  return s;
}

}  // namespace kiln
