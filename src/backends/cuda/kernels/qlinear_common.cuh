// What the CUDA kernels of the integer convolutions and matrix products share: qlinear_conv.cu
// (QLinearConv, ConvInteger) and qlinear_matmul.cu (QLinearMatMul, MatMulInteger), the ops
// passes/fuse_qdq.cc folds Q/DQ models into and ONNX Runtime's QOperator format writes, on 8-bit
// data (int8 or uint8 on either side).
//
// Results equal the CPU's (src/backends/cpu/kernels/conv.cc, matmul.cc) bit for bit: the sum of
// (x - x_zero_point)(w - w_zero_point) is exact (int32 on the tensor cores, int64 in the direct
// kernels), the bias is added as an integer, and the requantization is the CPU's float
// arithmetic: multiplier float(x_scale) * float(w_scale) / float(y_scale), float(acc) times it,
// rounded half to even, plus the zero point (QLinearMatMul adds it before rounding, as the CPU
// kernel does), clipped.
//
// Two tactics per op:
// - cuda.qconv.imma / cuda.qmatmul.imma (constant weights, constant per-tensor activation
//   parameters, groups 1): cuBLASLt's int8 tensor-core GEMM (CUBLAS_COMPUTE_32I, "TN": both
//   operands K-contiguous). The weights are made signed (uint8 - 128), padded to [Mp, Kp] and
//   summed per row once per context, on the host; the activations go through an im2col (conv) or
//   a signed copy (matmul) into the workspace, in chunks of rows that fit it; the zero points are
//   applied after the product: acc = S - zx*Wsum - zw*Xsum + K*zx*zw (Xsum only where a weight
//   zero point is not 0). One epilogue kernel adds the bias and requantizes into NCHW / [R, N].
//   Where cuBLASLt has no algorithm for a shape, or the workspace holds too few rows, the layer
//   runs the direct kernel for that shape and says so once.
// - cuda.qconv.direct / cuda.qmatmul.direct: one thread per output element, any geometry (1-3
//   spatial dims, groups, per-channel weight zero points, per-row activation parameters).
// The int8 GEMM's algorithm is cuBLASLt's heuristic pick per context and shape, not yet recorded
// in the engine (the float GEMMs' is, kernels/matmul.cu).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/gemm_epilogue.h"
#include "backends/cuda/launch.h"
#include "core/log.h"

namespace kiln::cuda {

// Each including file gets its own copy (one op family per file, both use all of it).
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int ld8(const void* p, bool u8, int64_t i) {
  return u8 ? int(static_cast<const uint8_t*>(p)[i]) : int(static_cast<const int8_t*>(p)[i]);
}

// ---- requantization ------------------------------------------------------------------------

enum OutKind : int { kOutInt32 = 0, kOutInt8 = 1, kOutUInt8 = 2 };

// What turns an exact accumulator into the output element.
struct Requant {
  int out = kOutInt32;
  bool zp_before_round = false;  // QLinearMatMul: rint(f + zy); QLinearConv: rint(f) + zy
  const float* xs = nullptr;     // scales (device); xs/ys one value, ws nws values
  const float* ws = nullptr;
  int64_t nws = 1;
  const float* ys = nullptr;
  const void* yz = nullptr;      // output zero point (device), the output's type; null: 0
};

__device__ __forceinline__ void store(const Requant& q, void* y, int64_t i, int64_t acc, int64_t channel) {
  if (q.out == kOutInt32) {
    static_cast<int32_t*>(y)[i] = int32_t(acc);
    return;
  }
  const bool u8 = q.out == kOutUInt8;
  const float mult = __fdiv_rn(__fmul_rn(q.xs[0], q.ws[q.nws == 1 ? 0 : channel % q.nws]), q.ys[0]);
  const float f = __fmul_rn(__ll2float_rn(acc), mult);
  const double zy = q.yz ? double(ld8(q.yz, u8, 0)) : 0.0;
  double v = q.zp_before_round ? rint(double(f) + zy) : rint(double(f)) + zy;
  if (isnan(v)) v = 0;
  v = fmin(fmax(v, u8 ? 0.0 : -128.0), u8 ? 255.0 : 127.0);
  if (u8) static_cast<uint8_t*>(y)[i] = uint8_t(v);
  else static_cast<int8_t*>(y)[i] = int8_t(v);
}

int out_kind(DataType t) { return t == DataType::kInt8 ? kOutInt8 : t == DataType::kUInt8 ? kOutUInt8 : kOutInt32; }
bool is_8bit(const Value* v) { return v && (v->dtype == DataType::kInt8 || v->dtype == DataType::kUInt8); }

// The op's operand positions: QLinear* (x, xs, xz, w, ws, wz, ys, yz [, bias]) or *Integer
// (x, w [, xz, wz]).
struct Slots {
  int x = 0, w = 1, xz = 2, wz = 3, xs = -1, ws = -1, ys = -1, yz = -1, bias = -1;
};
Slots slots_of(const Node& n) {
  if (n.op_type.rfind("QLinear", 0) == 0) return {0, 3, 2, 5, 1, 4, 6, 7, 8};
  return {};
}
const DeviceTensor* opt(const LaunchContext& c, int i) { return i >= 0 && c.has_input(size_t(i)) ? &c.inputs[size_t(i)] : nullptr; }

Requant requant_of(const LaunchContext& c, const Slots& s, bool zp_before_round) {
  Requant q;
  q.out = out_kind(c.outputs[0].dtype);
  q.zp_before_round = zp_before_round;
  if (q.out == kOutInt32) return q;
  q.xs = c.inputs[size_t(s.xs)].as<const float>();
  q.ws = c.inputs[size_t(s.ws)].as<const float>();
  q.nws = std::max<int64_t>(1, c.inputs[size_t(s.ws)].numel());
  q.ys = c.inputs[size_t(s.ys)].as<const float>();
  q.yz = opt(c, s.yz) ? opt(c, s.yz)->data : nullptr;
  return q;
}

// ---- the int8 tensor-core GEMM ---------------------------------------------------------------

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// A GemmPlan (gemm_epilogue.h) and whether cuBLASLt has an int8 algorithm for it.
struct LtPlan : GemmPlan {
  bool ok = false;
};

// Per context and layer: the constant operand made signed and padded, its row sums, and the GEMM
// plans by chunk height.
struct QGemmState : LayerState {
  bool prepared = false, usable = false;
  int8_t* w = nullptr;       // [rows_p, kp], row-major, zeros in the padding
  int32_t* wsum = nullptr;   // [rows_p]
  int32_t* wz = nullptr;     // [rows_p] signed weight zero points
  int64_t rows = 0, rows_p = 0, k = 0, kp = 0;
  int zx = 0;                // signed activation zero point
  bool any_wz = false;
  std::map<int64_t, std::unique_ptr<LtPlan>> plans;
  std::map<std::vector<int64_t>, bool> warned;
  ~QGemmState() override {
    for (void* p : {static_cast<void*>(w), static_cast<void*>(wsum), static_cast<void*>(wz)}) if (p) cudaFree(p);
  }
};

// Makes the state's signed weights from the host copy: rows x k values read by at(row, kk).
template <class At>
Status prepare_weights(QGemmState& st, int64_t rows, int64_t k, const std::vector<int32_t>& wz_signed, At at) {
  st.rows = rows;
  st.k = k;
  st.rows_p = round_up(rows, 4);
  st.kp = round_up(k, 16);
  std::vector<int8_t> w(size_t(st.rows_p * st.kp), 0);
  std::vector<int32_t> sum(size_t(st.rows_p), 0), wz(size_t(st.rows_p), 0);
  for (int64_t r = 0; r < rows; ++r) {
    int32_t s = 0;
    for (int64_t kk = 0; kk < k; ++kk) {
      const int v = at(r, kk);
      w[size_t(r * st.kp + kk)] = int8_t(v);
      s += v;
    }
    sum[size_t(r)] = s;
    wz[size_t(r)] = wz_signed[size_t(wz_signed.size() == 1 ? 0 : r)];
    st.any_wz = st.any_wz || wz[size_t(r)] != 0;
  }
  KILN_CUDA_CHECK(cudaMalloc(&st.w, w.size()));
  KILN_CUDA_CHECK(cudaMalloc(&st.wsum, sum.size() * 4));
  KILN_CUDA_CHECK(cudaMalloc(&st.wz, wz.size() * 4));
  KILN_RETURN_IF_ERROR(upload_sync({{st.w, w.data(), w.size()}, {st.wsum, sum.data(), sum.size() * 4},
                                    {st.wz, wz.data(), wz.size() * 4}}));
  st.usable = true;
  return Status::ok();
}

// The plan of C[cols, rows_p] (int32, row-major) = act[cols, kp] x w[rows_p, kp]^T.
Expected<const LtPlan*> lt_plan(LaunchContext& c, QGemmState& st, int64_t cols, size_t lt_ws) {
  auto& slot = st.plans[cols];
  if (slot) return slot.get();
  slot = std::make_unique<LtPlan>();
  LtPlan& p = *slot;
  KILN_CUDA_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32I, CUDA_R_32I));
  const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t));
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof nt));
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.la, CUDA_R_8I, uint64_t(st.kp), uint64_t(st.rows_p), st.kp));
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.lb, CUDA_R_8I, uint64_t(st.kp), uint64_t(cols), st.kp));
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.ly, CUDA_R_32I, uint64_t(st.rows_p), uint64_t(cols), st.rows_p));
  cublasLtMatmulPreference_t pref = nullptr;
  KILN_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t ws = lt_ws;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(c.cublaslt, p.desc, p.la, p.lb, p.ly, p.ly, pref, 1, &res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS) {
    p.ok = true;
    p.algo = res.algo;
    p.workspace = res.workspaceSize;
  }
  return slot.get();
}

// sums[r] = sum of buf[r, 0..kp): one warp per row.
__global__ void row_sums(const int8_t* buf, int64_t rows, int64_t kp, int32_t* sums) {
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= rows) return;
  int32_t s = 0;
  for (int64_t kk = lane; kk < kp; kk += 32) s += buf[warp * kp + kk];
  for (int o = 16; o > 0; o /= 2) s += __shfl_down_sync(0xffffffffu, s, o);
  if (lane == 0) sums[warp] = s;
}

// The zero-point terms, the bias and the requantization of a chunk's products prod[pc, rows_p]:
// element (pl, ch) goes to y at out_index(p0 + pl, ch).
struct Epilogue {
  const int32_t* prod = nullptr;
  const int32_t* xsum = nullptr;  // [pc], null when no weight zero point is nonzero
  const int32_t* wsum = nullptr;
  const int32_t* wz = nullptr;
  const int32_t* bias = nullptr;
  int64_t rows = 0, rows_p = 0, k = 0;
  int zx = 0;
  int64_t out_size = 0;  // conv: pixels per image (NCHW out); 0: matmul ([R, rows] out)
  void* y = nullptr;
  Requant q;
};

// The epilogue of a layer whose weights `st` holds: bias (may be null), pixels per image for a
// convolution's NCHW output (0: a matrix product's [R, N]), the output and its requantization.
Epilogue epilogue_of(const QGemmState& st, const int32_t* bias, int64_t out_size, void* y, const Requant& q) {
  Epilogue e;
  e.wsum = st.wsum;
  e.wz = st.wz;
  e.bias = bias;
  e.rows = st.rows;
  e.rows_p = st.rows_p;
  e.k = st.k;
  e.zx = st.zx;
  e.out_size = out_size;
  e.y = y;
  e.q = q;
  return e;
}

__global__ void qgemm_epilogue(Epilogue e, int64_t p0, int64_t pc) {
  const int64_t total = pc * e.rows;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    // Conv: pixel fastest, so the NCHW writes coalesce; matmul: channel fastest ([R, N] out).
    const int64_t pl = e.out_size ? i % pc : i / e.rows, ch = e.out_size ? i / pc : i % e.rows;
    const int zw = e.wz[ch];
    int64_t acc = int64_t(e.prod[pl * e.rows_p + ch]) - int64_t(e.zx) * e.wsum[ch] + int64_t(e.k) * e.zx * zw;
    if (e.xsum) acc -= int64_t(zw) * e.xsum[pl];
    if (e.bias) acc += e.bias[ch];
    const int64_t p = p0 + pl;
    const int64_t out = e.out_size ? ((p / e.out_size) * e.rows + ch) * e.out_size + p % e.out_size : p * e.rows + ch;
    store(e.q, e.y, out, acc, ch);
  }
}

// Runs the chunked GEMM over `total` activation rows; fill(p0, pc, buf) writes a chunk's signed
// rows. False (no error) when it cannot run here: the caller runs the direct kernel.
template <class Fill>
Expected<bool> run_imma(LaunchContext& c, QGemmState& st, int64_t total, Epilogue e, Fill fill) {
  if (!c.workspace || !c.cublaslt) return false;
  const size_t lt_ws = std::min<size_t>(c.workspace_bytes / 8, size_t(16) << 20) / 256 * 256;
  const size_t budget = c.workspace_bytes - lt_ws;
  const int64_t per_row = st.kp + 4 * st.rows_p + 4 + 8;
  const int64_t pc = std::min<int64_t>(total, int64_t(budget / size_t(per_row)) / 16 * 16);
  if (pc < std::min<int64_t>(total, 16)) return false;
  char* base = static_cast<char*>(c.workspace);
  auto at = [&](size_t off) { return base + off; };
  const size_t col_off = lt_ws, col_bytes = size_t(round_up(pc * st.kp, 256));
  const size_t prod_off = col_off + col_bytes, prod_bytes = size_t(round_up(pc * st.rows_p * 4, 256));
  const size_t sum_off = prod_off + prod_bytes;
  if (sum_off + size_t(pc) * 4 > c.workspace_bytes) return false;
  auto* col = reinterpret_cast<int8_t*>(at(col_off));
  auto* prod = reinterpret_cast<int32_t*>(at(prod_off));
  auto* xsum = reinterpret_cast<int32_t*>(at(sum_off));
  e.prod = prod;
  e.xsum = st.any_wz ? xsum : nullptr;
  const int32_t one = 1, zero = 0;
  for (int64_t p0 = 0; p0 < total; p0 += pc) {
    const int64_t n = std::min(pc, total - p0);
    KILN_ASSIGN_OR_RETURN(const LtPlan* plan, lt_plan(c, st, n, lt_ws));
    if (!plan->ok) return false;
    fill(p0, n, col);
    if (st.any_wz) row_sums<<<cuda_grid_for(n * 32, kThreads), kThreads, 0, c.stream>>>(col, n, st.kp, xsum);
    KILN_CUDA_CHECK(cublasLtMatmul(c.cublaslt, plan->desc, &one, st.w, plan->la, col, plan->lb, &zero, prod, plan->ly, prod,
                                   plan->ly, &plan->algo, base, plan->workspace, c.stream));
    qgemm_epilogue<<<cuda_grid_for(n * st.rows, kThreads), kThreads, 0, c.stream>>>(e, p0, n);
  }
  return true;
}

void say_direct_once(LaunchContext& c, QGemmState& st, const std::vector<int64_t>& shape, const std::string& why) {
  if (st.warned.emplace(shape, true).second)
    log_warning(c.node.label() + ": the int8 tensor-core GEMM cannot run at these shapes (" + why +
                "); the direct kernel runs");
}

// Signed zero points from a host tensor (8-bit), one per element.
std::vector<int32_t> signed_zero_points(const Tensor* z, bool u8) {
  std::vector<int32_t> out;
  if (!z || z->numel() == 0) return {0};
  for (int64_t i = 0; i < z->numel(); ++i) out.push_back(int32_t(z->get_as_double(i)) - (u8 ? 128 : 0));
  return out;
}

// ---- build-time checks -----------------------------------------------------------------------

bool one_value(const Shape& s) {
  if (!s.is_static()) return false;
  int64_t n = 1;
  for (int64_t d : s.static_dims()) n *= d;
  return n == 1;
}

bool constant(const Node& n, int i) { return i < 0 || size_t(i) >= n.inputs.size() || !n.inputs[size_t(i)] || n.inputs[size_t(i)]->initializer; }

// The direct kernels: 8-bit data, float32 scales, int32 bias, an 8-bit (QLinear*) or int32 output.
Support check_common(const Node& n, bool conv) {
  if (Support g = cuda_int8_gate(); !g.ok) return g;
  const Slots s = slots_of(n);
  const size_t need = s.xs >= 0 ? 8 : 2;
  if (n.inputs.size() < need || n.outputs.empty() || !n.outputs[0]) return Support::no("missing inputs");
  for (size_t i = 0; i < need; ++i)
    if (!n.inputs[i]) return Support::no("missing input " + std::to_string(i));
  if (!is_8bit(n.inputs[size_t(s.x)]) || !is_8bit(n.inputs[size_t(s.w)])) return Support::no("data other than int8/uint8");
  const DataType yt = n.outputs[0]->dtype;
  if (s.xs >= 0) {
    if (yt != DataType::kInt8 && yt != DataType::kUInt8) return Support::no("an output other than int8/uint8");
    for (int i : {s.xs, s.ws, s.ys})
      if (n.inputs[size_t(i)]->dtype != DataType::kFloat32) return Support::no("scales other than float32");
    for (int i : {s.xs, s.ys}) {
      const Shape& sh = n.inputs[size_t(i)]->shape;
      if ((conv || i == s.ys) && !one_value(sh)) return Support::no("a per-tensor scale that is not one value");
    }
  } else if (yt != DataType::kInt32) {
    return Support::no("an output other than int32");
  }
  const Shape& xs = n.inputs[size_t(s.x)]->shape;
  if (conv && (!xs.rank_known() || xs.rank() < 3 || xs.rank() > 5)) return Support::no("input rank not in 3..5 (1-3 spatial dims)");
  if (!conv) {
    const Shape &as = xs, &bs = n.inputs[size_t(s.w)]->shape;
    if (!as.rank_known() || !bs.rank_known() || as.rank() < 2 || bs.rank() < 2) return Support::no("operands of rank below 2");
    if (bs.rank() != 2 && bs.rank() != as.rank()) return Support::no("a batched B whose rank differs from A's");
  }
  return Support::yes();
}

// The tensor-core path also needs constant weights and zero points (prepared on the host) and,
// for convolutions, groups 1.
Support check_imma(const Node& n, bool conv) {
  Support base = check_common(n, conv);
  if (!base.ok) return base;
  const Slots s = slots_of(n);
  if (!constant(n, s.w) || !constant(n, s.xz) || !constant(n, s.wz)) return Support::no("weights or zero points not constant");
  if (conv && n.attr_int("group", 1) != 1) return Support::no("grouped convolution");
  if (!conv && n.inputs[size_t(s.w)]->shape.rank() != 2) return Support::no("a batched B");
  if (!conv && s.xs >= 0) {
    if (!one_value(n.inputs[size_t(s.xs)]->shape)) return Support::no("a per-row activation scale");
  }
  return Support::yes();
}
}  // namespace

}  // namespace kiln::cuda
