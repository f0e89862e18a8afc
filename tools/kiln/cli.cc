#include "tools/kiln/cli.h"

#include <cstdio>

namespace kiln::cli {

void CliLogger::log(Severity severity, const char* message) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (severity <= Severity::kERROR) {
    errors_.push_back(message);
    return;
  }
  if (severity > level_) return;
  static const char* tags[] = {"F", "E", "W", "I", "V"};
  std::printf("[%s] %s\n", tags[static_cast<int>(severity)], message);
  std::fflush(stdout);
}

std::string CliLogger::take_errors() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string s = join(errors_, "; ");
  errors_.clear();
  return s;
}

void CliLogger::fail_api(const std::string& context) {
  std::string e = take_errors();
  throw CliError(e.empty() ? context : context + ": " + e);
}

void info(const std::string& line) { std::printf("[I] %s\n", line.c_str()); }
void warning(const std::string& line) { std::printf("[W] %s\n", line.c_str()); }

size_t volume(const Dims& d) {
  size_t n = 1;
  for (int64_t x : d) n *= static_cast<size_t>(x < 0 ? 0 : x);
  return n;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

}  // namespace kiln::cli
