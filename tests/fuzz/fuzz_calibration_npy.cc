// libFuzzer target: the .npy reader of --calibData (src/quant/calibration_files.cc). Contract:
// every input is either refused with an error naming the file ("fuzz.npy") or parsed into a
// supported type, non-negative dims and exactly product(dims) x element size bytes of data.
// Seeds: tests/fuzz/corpus/fuzz_calibration_npy.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "quant/calibration_files.h"

namespace {
[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz_calibration_npy: %s\n", what);
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  auto a = kiln::quant::parse_npy(bytes, "fuzz.npy");
  if (!a) {
    if (a.status().message().find("fuzz.npy") == std::string::npos) broken("an error does not name the file");
    return 0;
  }
  size_t count = 1;
  for (int64_t d : a->shape) {
    if (d < 0) broken("a negative dim");
    count *= static_cast<size_t>(d);
  }
  if (a->data.size() != count * kiln::tensorTypeSize(a->type)) broken("data size differs from the shape's");
  return 0;
}
