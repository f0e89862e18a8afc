// libFuzzer target: the timing cache parser (src/tuning/timing_cache.cc, kiln's text format).
// Contract: every input is either refused with an error naming "fuzz:<line>" or parsed into
// entries with finite non-negative times and at least one run each; serializing what was parsed
// and parsing it again gives the same cache and the same bytes (the writer and reader agree).
// The checksum is checked unless the input's last byte is 0xFF, so the fuzzer also gets past it.
// Seeds: tests/fuzz/corpus/fuzz_timing_cache.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tuning/timing_cache.h"

namespace {
[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz_timing_cache: %s\n", what);
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool check_sum = size == 0 || data[size - 1] != 0xFF;
  std::string_view text(reinterpret_cast<const char*>(data), check_sum ? size : size - 1);
  auto c = kiln::tuning::TimingCache::parse(text, "fuzz", check_sum);
  if (!c) {
    if (c.status().message().rfind("fuzz:", 0) != 0) broken("an error does not name the source");
    return 0;
  }
  std::string again = c->serialize();
  auto c2 = kiln::tuning::TimingCache::parse(again, "fuzz-again");
  if (!c2) {
    std::fprintf(stderr, "%s\n", c2.status().message().c_str());
    broken("the serialized cache does not parse");
  }
  if (!(*c2 == *c) || c2->serialize() != again) broken("serialize -> parse changes the cache");
  return 0;
}
