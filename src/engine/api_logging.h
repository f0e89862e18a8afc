// Routes the library's internal log (core/log.h) to a public kiln::Logger for the duration of
// one API call, so warnings from deep inside (e.g. the importer's opset notice) reach the user.
#pragma once
#include "core/log.h"
#include "kiln/logger.h"

namespace kiln {

class ScopedLogger {
 public:
  explicit ScopedLogger(Logger& logger) {
    set_log_level(Severity::kVerbose);
    set_log_sink([&logger](Severity s, const std::string& m) {
      logger.log(static_cast<Logger::Severity>(static_cast<int>(s)), m.c_str());
    });
  }
  ~ScopedLogger() {
    set_log_sink(nullptr);
    set_log_level(Severity::kWarning);
  }
  ScopedLogger(const ScopedLogger&) = delete;
  ScopedLogger& operator=(const ScopedLogger&) = delete;
};

inline void log_error(Logger& logger, const std::string& m) { logger.log(Logger::Severity::kERROR, m.c_str()); }

}  // namespace kiln
