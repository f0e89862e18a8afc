// The whole kiln flow through the public C++ API:
//   ONNX file -> Network -> engine bytes -> file -> Engine -> ExecutionContext -> outputs.
// Usage: build_and_run model.onnx model.engine   (inputs get random values; static shapes)
#include <cstdio>
#include <fstream>
#include <random>
#include <vector>

#include "kiln/kiln.h"

int main(int argc, char** argv) {
  if (argc != 3) { std::fprintf(stderr, "usage: %s model.onnx out.engine\n", argv[0]); return 2; }
  kiln::StderrLogger logger(kiln::Logger::Severity::kINFO);

  // 1. Parse and build (once, offline).
  kiln::Builder builder(logger);
  auto network = builder.createNetwork();
  kiln::OnnxParser parser(*network, logger);
  if (!parser.parseFromFile(argv[1])) {
    for (int i = 0; i < parser.getNbErrors(); ++i)
      std::fprintf(stderr, "  %s: %s\n", parser.getError(i).node.c_str(), parser.getError(i).message.c_str());
    return 1;
  }
  auto config = builder.createBuilderConfig();
  config->setMemoryPoolLimit(kiln::MemoryPoolType::kWORKSPACE, size_t(256) << 20);
  std::vector<uint8_t> plan = builder.buildSerializedNetwork(*network, *config);
  if (plan.empty()) return 1;
  std::ofstream(argv[2], std::ios::binary).write(reinterpret_cast<const char*>(plan.data()), plan.size());

  // 2. Load (many times, in the serving process) and run.
  kiln::Runtime runtime(logger);
  auto engine = runtime.deserializeFromFile(argv[2]);
  if (!engine) return 1;
  auto context = engine->createExecutionContext();
  std::vector<std::vector<char>> buffers;
  std::mt19937 rng(0);
  for (int i = 0; i < engine->getNbIOTensors(); ++i) {
    std::string name = engine->getIOTensorName(i);
    kiln::Dims dims = context->getTensorShape(name);
    size_t bytes = kiln::tensorTypeSize(engine->getTensorDataType(name));
    for (int64_t d : dims) bytes *= static_cast<size_t>(d);
    buffers.emplace_back(bytes);
    if (engine->getTensorIOMode(name) == kiln::TensorIOMode::kINPUT &&
        engine->getTensorDataType(name) == kiln::TensorType::kFLOAT) {
      auto* p = reinterpret_cast<float*>(buffers.back().data());
      std::uniform_real_distribution<float> u(-1.f, 1.f);
      for (size_t k = 0; k < bytes / sizeof(float); ++k) p[k] = u(rng);
    }
    context->setTensorAddress(name, buffers.back().data());
    std::printf("%s %s %s\n", engine->getTensorIOMode(name) == kiln::TensorIOMode::kINPUT ? "input " : "output",
                name.c_str(), kiln::dimsToString(dims).c_str());
  }
  if (!context->execute()) return 1;
  for (int i = 0; i < engine->getNbIOTensors(); ++i) {
    std::string name = engine->getIOTensorName(i);
    if (engine->getTensorIOMode(name) != kiln::TensorIOMode::kOUTPUT ||
        engine->getTensorDataType(name) != kiln::TensorType::kFLOAT) continue;
    const auto* p = reinterpret_cast<const float*>(buffers[i].data());
    std::printf("%s[0..3] = %g %g %g\n", name.c_str(), p[0], buffers[i].size() > 4 ? p[1] : 0.f, buffers[i].size() > 8 ? p[2] : 0.f);
  }
  return 0;
}
