// libFuzzer target: the whole build path on arbitrary model bytes, as `kiln --onnx=X
// --backend=cpu` runs it: OnnxParser -> Builder (optimization passes, constant folding on the
// host, tactics, every profile's shapes, the memory plan, serialization) -> Runtime::deserialize
// -> one execute on zero-filled inputs when the engine is small (no Loop/Scan: a valid model may
// loop for as long as it likes). Dynamic input dims are built at 1.
//
// Contract: a model is built, or refused with an error; a built engine loads; nothing crashes,
// hangs, leaks or allocates without bound (a valid model whose constants or activations would
// be enormous must be refused by a size check, not by the allocator).
// Seeds: the fuzz_onnx_import corpus (scripts/fuzz.sh passes it too); dictionary: the same.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "core/log.h"
#include "kiln/kiln.h"

namespace {

class QuietLogger : public kiln::Logger {
 public:
  void log(Severity s, const char* m) noexcept override {
    if (s <= Severity::kERROR) last_error = m;
  }
  std::string last_error;
};

class VectorAllocator : public kiln::OutputAllocator {
 public:
  void* reallocateOutput(const char* name, void*, uint64_t size, uint64_t) noexcept override {
    auto& b = buffers[name];
    b.assign(size ? size : 1, 0);
    return b.data();
  }
  void notifyShape(const char*, const kiln::Dims&) noexcept override {}
  std::map<std::string, std::vector<uint8_t>> buffers;
};

constexpr uint64_t kMaxRunBytes = 1 << 20;

void run_once(kiln::Engine& engine) {
  if (engine.getDeviceMemorySize() > kMaxRunBytes) return;
  for (int i = 0; i < engine.getNbLayers(); ++i) {
    std::string op = engine.getLayerInformation(i).op_type;
    if (op == "Loop" || op == "Scan") return;
  }
  auto ctx = engine.createExecutionContext();
  if (!ctx) return;
  std::map<std::string, std::vector<uint8_t>> io;
  VectorAllocator alloc;
  for (int i = 0; i < engine.getNbIOTensors(); ++i) {
    std::string name = engine.getIOTensorName(i);
    kiln::Dims d = ctx->getTensorShape(name);
    uint64_t n = kiln::tensorTypeSize(engine.getTensorDataType(name));
    if (n == 0) n = 8;  // packed (int4, ...) or exotic types: more than enough per element
    bool known = !d.empty() || engine.getTensorIOMode(name) == kiln::TensorIOMode::kINPUT;
    for (int64_t x : d) known = known && x >= 0, n *= x >= 0 ? static_cast<uint64_t>(x) : 1;
    if (engine.getTensorIOMode(name) == kiln::TensorIOMode::kOUTPUT) ctx->setOutputAllocator(name, &alloc);
    if (!known) continue;
    if (n > kMaxRunBytes) return;
    io[name].assign(n ? n : 1, 0);
    ctx->setTensorAddress(name, io[name].data());
  }
  (void)ctx->execute();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kiln::set_log_level(kiln::Severity::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  QuietLogger logger;
  kiln::Builder builder(logger);
  auto network = builder.createNetwork();
  kiln::OnnxParser parser(*network, logger);
  if (!parser.parse(data, size)) return 0;
  auto config = builder.createBuilderConfig();
  config->setBackend(kiln::BackendKind::kCPU);
  kiln::OptimizationProfile profile;
  bool dynamic = false;
  for (int i = 0; i < network->getNbInputs(); ++i) {
    kiln::Dims d = network->getInputDims(i);
    for (int64_t& x : d)
      if (x < 0) x = 1, dynamic = true;
    for (auto w : {kiln::OptProfileSelector::kMIN, kiln::OptProfileSelector::kOPT, kiln::OptProfileSelector::kMAX})
      profile.setDimensions(network->getInputName(i), w, d);
  }
  if (dynamic) config->addOptimizationProfile(profile);
  std::vector<uint8_t> plan = builder.buildSerializedNetwork(*network, *config);
  if (plan.empty()) return 0;
  kiln::Runtime runtime(logger);
  auto engine = runtime.deserialize(plan.data(), plan.size());
  if (!engine) {
    std::fprintf(stderr, "fuzz_onnx_build: the engine kiln built does not load: %s\n", logger.last_error.c_str());
    std::abort();
  }
  run_once(*engine);
  return 0;
}
