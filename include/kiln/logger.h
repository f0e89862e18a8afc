// kiln public API: logging. Every object that can fail takes a Logger; errors are reported to
// it (severity kERROR) and the call returns null/false, as in TensorRT.
#pragma once
#include <string>

namespace kiln {

class Logger {
 public:
  enum class Severity { kINTERNAL_ERROR = 0, kERROR = 1, kWARNING = 2, kINFO = 3, kVERBOSE = 4 };
  virtual ~Logger() = default;
  virtual void log(Severity severity, const char* message) noexcept = 0;
};

// Prints kWARNING and above (or up to `level`) to stderr with a [E]/[W]/[I]/[V] tag.
class StderrLogger : public Logger {
 public:
  explicit StderrLogger(Severity level = Severity::kWARNING) : level_(level) {}
  void log(Severity severity, const char* message) noexcept override;
  void setLevel(Severity level) { level_ = level; }

 private:
  Severity level_;
};

}  // namespace kiln
