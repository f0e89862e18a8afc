// libFuzzer target: the kiln command line's parsers (tools/kiln/options.cc, compiled into this
// target): parse_options over a whole argument list and parse_shape_list over single values.
// The input is split at '\n' into arguments ("--shapes=x:1x3,y:2", "--iterations=5", ...).
//
// Contract: every argument list is either accepted, giving options the run can use (counts
// >= 1, no negative sizes, shapes with non-negative dims), or refused with a CliError naming
// the flag; no other exception, crash or sanitizer report.
// Seeds: tests/fuzz/corpus/fuzz_cli_options; dictionary: tests/fuzz/fuzz_cli_options.dict.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tools/kiln/options.h"

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz_cli_options: accepted options violate: %s\n", what);
  std::abort();
}

void check_shapes(const kiln::cli::ShapeMap& m) {
  if (m.empty()) broken("an accepted shape list is empty");
  for (const auto& [name, dims] : m) {
    if (dims.empty()) broken("a shape has no dims");
    for (int64_t d : dims)
      if (d < 0) broken("a dim is negative");
  }
}

void check(const kiln::cli::Options& o) {
  if (o.iterations < 1 || o.avg_runs < 1 || o.streams < 1) broken("iterations/avgRuns/streams >= 1");
  if (o.warmup_ms < 0 || o.profile < 0 || o.device < 0 || o.max_batch < 0) broken("warmUp/profile/device/maxBatch >= 0");
  if (!(o.duration_s >= 0)) broken("duration >= 0");
  if (o.percentiles.empty()) broken("percentiles not empty");
  for (double p : o.percentiles)
    if (!(p >= 0 && p <= 100)) broken("percentile in [0, 100]");
  for (const auto& v : {o.min_shapes, o.opt_shapes, o.max_shapes})
    for (const auto& m : v) check_shapes(m);
  if (!o.shapes.empty()) check_shapes(o.shapes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    args.push_back(text.substr(start, nl - start));
  args.push_back(text.substr(start));

  try {
    check(kiln::cli::parse_options(args));
  } catch (const kiln::cli::CliError& e) {
    if (std::string(e.what()).empty()) broken("a CliError with no message");
  }
  for (const auto& a : args) {
    try {
      check_shapes(kiln::cli::parse_shape_list(a, "--shapes"));
    } catch (const kiln::cli::CliError&) {
    }
  }
  return 0;
}
