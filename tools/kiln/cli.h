// Shared pieces of the kiln command line: the error type every step throws, the logger that
// prints trtexec-style "[I] ..." lines, and small helpers. Only the public API (kiln/*.h).
#pragma once
#include <cstdint>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::cli {

// A failure to report as one "[E] ..." line and a non-zero exit.
struct CliError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... A>
[[noreturn]] void fail(const A&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  throw CliError(s.str());
}

// Prints info/verbose to stdout, warnings to stdout, and keeps errors for the CLI to report
// once with its own context (see take_errors), so each failure is one clear message.
class CliLogger : public Logger {
 public:
  explicit CliLogger(Severity level) : level_(level) {}
  void log(Severity severity, const char* message) noexcept override;
  // The errors logged since the last call, joined by "; ".
  std::string take_errors();
  // Throws CliError("<context>: <the API's logged errors>").
  [[noreturn]] void fail_api(const std::string& context);
  bool verbose() const { return level_ >= Severity::kVERBOSE; }

 private:
  Severity level_;
  std::mutex mutex_;  // --streams contexts may log from several threads
  std::vector<std::string> errors_;
};

void info(const std::string& line);     // "[I] line" on stdout
void warning(const std::string& line);  // "[W] line" on stdout
size_t volume(const Dims& d);
std::string join(const std::vector<std::string>& v, const std::string& sep);

}  // namespace kiln::cli
