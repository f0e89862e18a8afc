// libFuzzer target: the whole build path on arbitrary model bytes, as `kiln --onnx=X
// --backend=cpu` runs it: OnnxParser -> Builder (optimization passes, constant folding on the
// host, tactics, every profile's shapes, the memory plan, serialization) -> Runtime::deserialize
// -> one execute on zero-filled inputs when every activation's shape is known before the run
// and all are small (no Loop/Scan, no data-dependent shapes: a valid model may loop or allocate
// for as long as it likes). Dynamic input dims are built at 1.
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
#include "engine/engine_file.h"
#include "engine/shape_eval.h"
#include "kiln/kiln.h"

namespace {

class QuietLogger : public kiln::Logger {
 public:
  void log(Severity s, const char* m) noexcept override {
    if (s <= Severity::kERROR) last_error = m;
  }
  std::string last_error;
};

constexpr uint64_t kMaxRunBytes = 1 << 20;

// Whether every activation's shape is known before the run and all of them together are small:
// a data-dependent shape (Range's length from an input's value) may be any size at all.
bool small_and_static(const std::vector<uint8_t>& plan) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(plan);
  auto m = kiln::engine::deserialize({bytes, reinterpret_cast<const std::byte*>(bytes->data())}, bytes->size());
  if (!m || m->profiles.empty()) return false;
  std::map<std::string, std::vector<int64_t>> dims;
  for (const auto& p : m->profiles[0]) dims[p.input] = p.opt;
  auto shapes = kiln::engine::evaluate_shapes(*m->graph, dims);
  if (!shapes) return false;
  uint64_t total = 0;
  for (const auto& v : m->graph->values()) {
    if (v->initializer) continue;
    auto it = shapes->dims.find(v.get());
    if (it == shapes->dims.end()) return false;
    uint64_t n = 8;  // bytes per element, at most; checked per dim, so it cannot wrap
    for (int64_t d : it->second)
      if ((n *= static_cast<uint64_t>(d)) > kMaxRunBytes) return false;
    if ((total += n) > kMaxRunBytes) return false;
  }
  return true;
}

void run_once(kiln::Engine& engine) {
  for (int i = 0; i < engine.getNbLayers(); ++i) {
    std::string op = engine.getLayerInformation(i).op_type;
    if (op == "Loop" || op == "Scan") return;
  }
  auto ctx = engine.createExecutionContext();
  if (!ctx) return;
  std::map<std::string, std::vector<uint8_t>> io;  // every shape is static here (small_and_static)
  for (int i = 0; i < engine.getNbIOTensors(); ++i) {
    std::string name = engine.getIOTensorName(i);
    uint64_t n = 8;  // bytes per element, at most
    for (int64_t x : ctx->getTensorShape(name)) n *= x >= 0 ? static_cast<uint64_t>(x) : 1;
    io[name].assign(n, 0);
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
  if (small_and_static(plan)) run_once(*engine);
  return 0;
}
