// libFuzzer target: the ONNX importer on arbitrary bytes, the way OnnxParser::parse runs it
// (src/engine/onnx_parser.cc): protobuf ModelProto -> Graph -> verify() -> shape inference.
// The bytes come with no model folder, so external data must be refused, never read.
//
// Contract under test: any input either imports into a graph that verifies, or is refused with
// an error (Status); never a crash, hang, leak, out-of-memory or sanitizer report. A second
// pass imports the same bytes without shape inference and without the supported-op check
// (what a graph dump does), which reaches the reader of ops kiln does not know.
//
// Seeds: tests/fuzz/corpus/fuzz_onnx_import (small models of Debian's ONNX node suite);
// dictionary: tests/fuzz/fuzz_onnx_import.dict. Run: scripts/fuzz.sh --target=fuzz_onnx_import
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/log.h"
#include "onnx/importer.h"

namespace {

void check_graph(const kiln::Expected<std::unique_ptr<kiln::Graph>>& g, const char* pass) {
  if (!g) {
    if (g.status().message().empty()) {
      std::fprintf(stderr, "fuzz_onnx_import (%s): refused with an empty error message\n", pass);
      std::abort();
    }
    return;
  }
  kiln::Status s = (*g)->verify();
  if (!s) {
    std::fprintf(stderr, "fuzz_onnx_import (%s): imported graph fails verify(): %s\n", pass, s.message().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kiln::set_log_level(kiln::Severity::kError);  // the opset-downgrade notice, once per input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  check_graph(kiln::onnx_import::import_bytes(bytes, ""), "import");

  kiln::onnx_import::ImportOptions raw;
  raw.run_shape_inference = false;
  raw.require_supported_ops = false;
  check_graph(kiln::onnx_import::import_bytes(bytes, "", raw), "import without inference");
  return 0;
}
