// libFuzzer target: the INT8 calibration cache parser (src/quant/calibration_cache.cc, TensorRT's
// text format). Contract: every input is either refused with an error naming "fuzz:<line>" or
// parsed into unique names with finite non-negative scales, and formatting what was parsed and
// parsing it again gives the same cache (the writer and reader agree).
// Seeds: tests/fuzz/corpus/fuzz_calibration_cache.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "quant/calibration_cache.h"

namespace {
[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz_calibration_cache: %s\n", what);
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = kiln::quant::parse_calibration_cache(text, "fuzz");
  if (!c) {
    if (c.status().message().rfind("fuzz", 0) != 0) broken("an error does not name the source");
    return 0;
  }
  std::set<std::string> names;
  for (const auto& [name, scale] : c->scales) {
    if (!names.insert(name).second) broken("a name parsed twice");
    if (!std::isfinite(scale) || scale < 0) broken("a scale is not finite and non-negative");
  }
  std::string again = kiln::quant::format_calibration_cache(*c);
  auto c2 = kiln::quant::parse_calibration_cache(again, "fuzz-again");
  if (!c2) {
    // A name that trims differently (leading/trailing blanks, a trailing ':'), or a newline-free
    // header with '\r' inside, is not written back faithfully: report it so it gets fixed.
    std::fprintf(stderr, "%s\n", c2.status().message().c_str());
    broken("the formatted cache does not parse");
  }
  if (c2->algorithm != c->algorithm || c2->version != c->version || c2->scales != c->scales)
    broken("format -> parse changes the cache");
  return 0;
}
