// --validate: the engine's outputs against an unoptimized CPU reference engine built from the
// same ONNX model, on the same inputs; max abs / rel error per output, in float64.
#include "tools/kiln/validate.h"

#include <cmath>
#include <cstdio>

#include "tools/kiln/build.h"

namespace kiln::cli {

void validate_outputs(const Options& o, const std::vector<HostTensor>& inputs, const std::vector<HostTensor>& outputs,
                      CliLogger& logger) {
  info("Validating against the CPU reference (the model as imported, no optimization passes)");
  auto bytes = build_engine(o, logger, /*reference=*/true);
  Runtime runtime(logger);
  auto ref_engine = runtime.deserialize(bytes.data(), bytes.size());
  if (!ref_engine) logger.fail_api("cannot load the --validate reference engine");
  auto ref = run_once(*ref_engine, inputs, o.profile, logger);
  for (const HostTensor& out : outputs) {
    const HostTensor* r = nullptr;
    for (const HostTensor& t : ref) if (t.name == out.name) r = &t;
    if (!r) fail("--validate: the reference has no output '", out.name, "'");
    if (r->dims != out.dims)
      fail("--validate: output '", out.name, "' has shape ", dimsToString(out.dims), " but the reference gives ",
           dimsToString(r->dims));
    double max_abs = 0, max_rel = 0, diff2 = 0, ref2 = 0;
    size_t mismatched_nan = 0;
    for (size_t i = 0; i < volume(out.dims); ++i) {
      double a = element_as_double(out, i), b = element_as_double(*r, i);
      if (std::isnan(a) || std::isnan(b) || std::isinf(a) || std::isinf(b)) {
        mismatched_nan += !(a == b || (std::isnan(a) && std::isnan(b)));
        continue;
      }
      double d = std::fabs(a - b);
      diff2 += d * d;
      ref2 += b * b;
      max_abs = std::max(max_abs, d);
      if (b != 0) max_rel = std::max(max_rel, d / std::fabs(b));
      else if (d != 0) max_rel = INFINITY;
    }
    char line[512];
    double rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : (diff2 > 0 ? INFINITY : 0.0);
    std::snprintf(line, sizeof line,
                  "Output '%s' (%s): max abs error = %.6g, max rel error = %.6g, relative L2 error = %.3g%s",
                  out.name.c_str(), dimsToString(out.dims).c_str(), max_abs, max_rel, rel_l2,
                  mismatched_nan ? (", " + std::to_string(mismatched_nan) + " NaN/Inf mismatches").c_str() : "");
    info(line);
  }
}

}  // namespace kiln::cli
