// Library-wide logging: one sink (stderr by default), replaceable by the public Logger.
#pragma once
#include <functional>
#include <string>

namespace kiln {

enum class Severity { kError = 1, kWarning = 2, kInfo = 3, kVerbose = 4 };

using LogSink = std::function<void(Severity, const std::string&)>;
void set_log_sink(LogSink sink);        // null restores the default
void set_log_level(Severity max_shown);  // messages above it are dropped (default kWarning)
void log(Severity s, const std::string& message);
inline void log_warning(const std::string& m) { log(Severity::kWarning, m); }
inline void log_info(const std::string& m) { log(Severity::kInfo, m); }
inline void log_verbose(const std::string& m) { log(Severity::kVerbose, m); }

}  // namespace kiln
