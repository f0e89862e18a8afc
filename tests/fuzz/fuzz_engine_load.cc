// libFuzzer target: the engine loader. Bytes -> Runtime::deserialize (engine_file.cc: preamble,
// checksum, header protobuf, weights, layers, verify; then the CPU backend's executor) ->
// an ExecutionContext -> every I/O tensor's shape under each profile's min/opt/max shapes
// (shape_eval.cc: host inference and the small shape-arithmetic values). No inference run.
//
// The file's XXH64 checksum would reject nearly every mutation before the parser sees it, so
// the target rewrites it to match the mutated bytes (bytes [40, 48)), unless the input's last
// byte is 0xFF: then the bytes go in as they are, checksum check included.
//
// Contract: a bad engine is refused with one logged error (null engine / false), never a
// crash, hang, leak or sanitizer report.
// Seeds: tests/fuzz/corpus/fuzz_engine_load (small CPU engines from `kiln --saveEngine`).
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/log.h"
#include "kiln/runtime.h"

namespace {

class QuietLogger : public kiln::Logger {
 public:
  void log(Severity, const char*) noexcept override {}
};

constexpr size_t kPreamble = 48;  // engine_file.h: magic, version, sizes, checksum

void query(kiln::Engine& engine, kiln::ExecutionContext& ctx) {
  for (int i = 0; i < engine.getNbIOTensors(); ++i) {
    std::string name = engine.getIOTensorName(i);
    (void)engine.getTensorIOMode(name);
    (void)engine.getTensorDataType(name);
    (void)engine.getTensorShape(name);
    (void)ctx.getTensorShape(name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kiln::set_log_level(kiln::Severity::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  if (size >= kPreamble && data[size - 1] != 0xFF) {
    uint64_t h = XXH64(bytes.data() + kPreamble, size - kPreamble, 0);
    std::memcpy(&bytes[40], &h, 8);
  }
  QuietLogger logger;
  kiln::Runtime runtime(logger);
  std::unique_ptr<kiln::Engine> engine = runtime.deserialize(bytes.data(), bytes.size());
  if (!engine) return 0;
  for (int i = 0; i < engine->getNbLayers(); ++i) (void)engine->getLayerInformation(i);
  (void)engine->getDeviceMemorySize();
  auto ctx = engine->createExecutionContext();
  if (!ctx) return 0;
  query(*engine, *ctx);
  // Each profile at its min, opt and max shapes.
  for (int p = 0; p < engine->getNbOptimizationProfiles() && p < 4; ++p) {
    if (!ctx->setOptimizationProfile(p)) continue;
    for (auto which : {kiln::OptProfileSelector::kMIN, kiln::OptProfileSelector::kOPT, kiln::OptProfileSelector::kMAX}) {
      for (int i = 0; i < engine->getNbIOTensors(); ++i) {
        std::string name = engine->getIOTensorName(i);
        if (engine->getTensorIOMode(name) == kiln::TensorIOMode::kINPUT)
          (void)ctx->setInputShape(name, engine->getProfileShape(name, p, which));
      }
      query(*engine, *ctx);
    }
  }
  return 0;
}
