// One row-major GEMM on cuBLASLt, with an optional fused epilogue, for MatMul/Gemm and for the
// fusion passes (Gemm+bias+activation) that will call it later:
//   Y[b] = act(alpha * op(A[b]) * op(B[b]) + beta * Y[b] + bias)    for b in [0, batch)
// where op() transposes when trans_* is set, bias (length n, the output's dtype) is added per
// column. The algorithm is cuBLASLt's heuristic's at build time (at the opt shapes), recorded in
// the tactic id as its configuration ("algo=23,tile=18,...,align=256"); descriptors are planned
// per layer, context, shape and alignment (GemmPlans), so the steady state allocates nothing.
#pragma once
#include <array>
#include <map>
#include <memory>

#include "backends/cuda/launch.h"

namespace kiln::cuda {

// Descriptors and the algorithm of one GEMM geometry (matmul.cu plans them; the bias pointer is in
// the descriptor, so it is part of the plan's key). The int8 GEMM's plans (qlinear_common.cuh)
// are these too.
struct GemmPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ly = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  GemmPlan() = default;
  GemmPlan(const GemmPlan&) = delete;
  GemmPlan& operator=(const GemmPlan&) = delete;
  ~GemmPlan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    for (auto l : {la, lb, ly}) if (l) cublasLtMatrixLayoutDestroy(l);
  }
};
// One layer's cuBLASLt plans in one context.
struct GemmPlans {
  GemmPlans();
  ~GemmPlans();
  std::map<std::array<int64_t, 18>, std::unique_ptr<GemmPlan>> plans;
};

enum class GemmEpilogue { kNone, kBias, kRelu, kBiasRelu, kGelu, kBiasGelu };

struct GemmArgs {
  DataType dtype = DataType::kFloat32;  // of A, B, Y and bias: float32, float16 or bfloat16
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;          // Y is m x n, op(A) m x k, op(B) k x n
  const void* a = nullptr;
  int64_t lda = 0;                      // row-major leading dims (elements)
  const void* b = nullptr;
  int64_t ldb = 0;
  void* y = nullptr;
  int64_t ldy = 0;
  const void* c = nullptr;              // beta's operand (Y's layout); null: Y itself
  float alpha = 1.f, beta = 0.f;
  const void* bias = nullptr;           // with kBias/kBiasRelu/kBiasGelu
  GemmEpilogue epilogue = GemmEpilogue::kNone;
  int64_t batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_y = 0;  // elements between batches; 0 broadcasts A or B
  GemmPlans* plans = nullptr;           // the layer's plans in this context
  std::string algo;                     // the recorded algorithm (the tactic id's tail); "": the heuristic picks
  std::string* selected = nullptr;      // build time: the tactic id is written here, id_prefix + the algorithm
  std::string id_prefix;
  std::vector<std::string>* candidates = nullptr;  // tuning: every heuristic algorithm's id (LaunchContext)
  int max_candidates = 4;
};

Status run_gemm(LaunchContext& ctx, const GemmArgs& g);

}  // namespace kiln::cuda
