// Times CUDA engines of one-op models (made by make_dm_bench.py): per model, the mean enqueue
// time over 100 runs and the bandwidth of its I/O bytes. Inputs are zero bytes (valid indices).
// Usage: dm_bench model.onnx...
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

#include "kiln/kiln.h"

int main(int argc, char** argv) {
  kiln::StderrLogger logger(kiln::Logger::Severity::kERROR);
  for (int a = 1; a < argc; ++a) {
    kiln::Builder builder(logger);
    auto network = builder.createNetwork();
    kiln::OnnxParser parser(*network, logger);
    if (!parser.parseFromFile(argv[a])) { std::printf("%s: parse failed\n", argv[a]); continue; }
    auto config = builder.createBuilderConfig();
    config->setBackend(kiln::BackendKind::kCUDA);
    auto plan = builder.buildSerializedNetwork(*network, *config);
    kiln::Runtime runtime(logger);
    auto engine = runtime.deserialize(plan.data(), plan.size());
    if (!engine) { std::printf("%s: build failed\n", argv[a]); continue; }
    auto ctx = engine->createExecutionContext();
    std::vector<void*> bufs;
    double bytes = 0;
    for (int i = 0; i < engine->getNbIOTensors(); ++i) {
      std::string name = engine->getIOTensorName(i);
      kiln::Dims d = ctx->getTensorShape(name);
      size_t n = kiln::tensorTypeSize(engine->getTensorDataType(name));
      for (int64_t x : d) n *= size_t(x);
      void* p = nullptr;
      cudaMalloc(&p, n ? n : 1);
      cudaMemset(p, 0, n ? n : 1);
      ctx->setTensorAddress(name, p);
      bufs.push_back(p);
      bytes += double(n);
    }
    cudaStream_t s;
    cudaStreamCreate(&s);
    for (int i = 0; i < 5; ++i) ctx->enqueue(s);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const int iters = 100;
    cudaEventRecord(e0, s);
    bool ok = true;
    for (int i = 0; i < iters; ++i) ok = ok && ctx->enqueue(s);
    cudaEventRecord(e1, s);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    const double us = 1000.0 * ms / iters;
    std::printf("%-40s %s %9.1f us %8.1f GB/s (%.1f MB moved)\n", argv[a], ok ? "ok  " : "FAIL", us, bytes / us / 1e3, bytes / 1e6);
    for (void* p : bufs) cudaFree(p);
    cudaStreamDestroy(s);
  }
}
