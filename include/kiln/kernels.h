// kiln public API: which kernel runs which operator on each backend built in (`kiln --list-kernels`).
#pragma once
#include <string>
#include <vector>

namespace kiln {

struct KernelInfo {
  std::string backend;  // "cpu" or "cuda"
  std::string domain;   // "" for ai.onnx, "kiln" for fused ops
  std::string op;
  std::string tactic;   // the id (or, where the build picks an algorithm, the id's family) recorded in engines, e.g. "cuda.conv"
};

// Every kernel of every backend in this build, by backend, domain and op.
std::vector<KernelInfo> listKernels();

}  // namespace kiln
