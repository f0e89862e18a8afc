// What the GPU tests share: a logger that keeps the last error, whether a GPU is usable (else a
// test skips with "SKIPPED (no GPU)"), relative L2 error, and running one serialized ONNX model
// through the public API on a backend (CPU: float32 reference; CUDA: --fp16), float32 I/O. Model
// building, the logger that keeps every error and the load loop: tests/unit/test_models.h.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "onnx/onnx_pb.h"
#include "tests/unit/test_models.h"

namespace kiln::gpu_test {

struct Log : Logger {
  std::string last;
  void log(Severity s, const char* m) noexcept override { if (s <= Severity::kERROR) last = m; }
};

inline bool gpu_usable() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// Relative L2 of a[from, to) against b[from, to) (to = 0: the whole of b).
inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b, size_t from = 0, size_t to = 0) {
  if (to == 0) to = b.size();
  double num = 0, den = 0;
  for (size_t i = from; i < to && i < a.size(); ++i) num += (a[i] - b[i]) * double(a[i] - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / den);
}

// Model-building shorthands (tests/unit/test_models.h): add_float_input, add_float_initializer,
// add_node, add_ints over a GraphProto; ModelBuilder and CaptureLogger for whole models.
using test::add_float_initializer;
using test::add_float_input;
using test::add_ints;
using test::add_node;

struct Input {
  std::string name;
  std::vector<int64_t> dims;
  const std::vector<float>* data;
};
struct Output {
  std::string name;
  size_t size;  // elements
};

// Builds `bytes` for `backend` (CUDA in float16; `configure` may change the config after that),
// runs it once on `inputs`, and returns the outputs one after the other. *tactic (and *info): the
// tactic (the layer information) of the last layer whose op type is `op` (if given).
inline std::vector<float> run_model(const std::string& bytes, BackendKind backend, const std::vector<Input>& inputs,
                                    const std::vector<Output>& outputs, const std::string& op = "",
                                    std::string* tactic = nullptr,
                                    const std::function<void(BuilderConfig&)>& configure = nullptr,
                                    LayerInfo* info = nullptr) {
  Log log;
  Builder b(log);
  auto net = b.createNetwork();
  OnnxParser p(*net, log);
  EXPECT_TRUE(p.parse(bytes.data(), bytes.size())) << log.last;
  auto cfg = b.createBuilderConfig();
  cfg->setBackend(backend);
  if (backend == BackendKind::kCUDA) cfg->setFlag(BuilderFlag::kFP16);
  if (configure) configure(*cfg);
  auto plan = b.buildSerializedNetwork(*net, *cfg);
  EXPECT_FALSE(plan.empty()) << log.last;
  Runtime rt(log);
  auto e = rt.deserialize(plan.data(), plan.size());
  if (!e) { ADD_FAILURE() << log.last; return {}; }
  for (int i = 0; (tactic || info) && i < e->getNbLayers(); ++i)
    if (e->getLayerInformation(i).op_type == op) {
      if (tactic) *tactic = e->getLayerInformation(i).tactic;
      if (info) *info = e->getLayerInformation(i);
    }
  auto ctx = e->createExecutionContext();
  const bool gpu = backend == BackendKind::kCUDA;
  std::vector<void*> dev;
  for (const Input& in : inputs) {
    void* ptr = const_cast<float*>(in.data->data());
    if (gpu) {
      cudaMalloc(&ptr, in.data->size() * 4);
      cudaMemcpy(ptr, in.data->data(), in.data->size() * 4, cudaMemcpyHostToDevice);
      dev.push_back(ptr);
    }
    ctx->setInputShape(in.name.c_str(), in.dims);
    ctx->setTensorAddress(in.name.c_str(), ptr);
  }
  std::vector<std::vector<float>> host;
  for (const Output& o : outputs) {
    host.emplace_back(o.size);
    void* ptr = host.back().data();
    if (gpu) { cudaMalloc(&ptr, o.size * 4); dev.push_back(ptr); }
    ctx->setTensorAddress(o.name.c_str(), ptr);
  }
  EXPECT_TRUE(ctx->execute()) << log.last;
  if (gpu) {
    cudaDeviceSynchronize();
    for (size_t i = 0; i < outputs.size(); ++i)
      cudaMemcpy(host[i].data(), dev[inputs.size() + i], outputs[i].size * 4, cudaMemcpyDeviceToHost);
    for (void* ptr : dev) cudaFree(ptr);
  }
  std::vector<float> all;
  for (const auto& h : host) all.insert(all.end(), h.begin(), h.end());
  return all;
}

}  // namespace kiln::gpu_test
