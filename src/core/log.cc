#include "core/log.h"

#include <cstdio>
#include <mutex>

namespace kiln {

namespace {
std::mutex g_mu;
LogSink g_sink;
Severity g_level = Severity::kWarning;
const char* tag(Severity s) {
  switch (s) {
    case Severity::kError: return "E";
    case Severity::kWarning: return "W";
    case Severity::kInfo: return "I";
    default: return "V";
  }
}
}  // namespace

void set_log_sink(LogSink sink) { std::lock_guard<std::mutex> l(g_mu); g_sink = std::move(sink); }
void set_log_level(Severity s) { std::lock_guard<std::mutex> l(g_mu); g_level = s; }

void log(Severity s, const std::string& message) {
  std::lock_guard<std::mutex> l(g_mu);
  if (s > g_level) return;
  if (g_sink) { g_sink(s, message); return; }
  std::fprintf(stderr, "[%s] %s\n", tag(s), message.c_str());
}

}  // namespace kiln
