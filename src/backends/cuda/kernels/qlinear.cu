// CUDA kernels of the integer convolutions and matrix products: QLinearConv, ConvInteger,
// QLinearMatMul and MatMulInteger (what passes/fuse_qdq.cc folds Q/DQ models into, and what ONNX
// Runtime's QOperator format writes), 8-bit data (int8 or uint8 on either side).
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
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/launch.h"
#include "core/log.h"
#include "ir/ops/conv_window.h"

namespace kiln::cuda {

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

// ---- direct kernels --------------------------------------------------------------------------

struct ConvArgs {
  const void* x = nullptr;
  const void* w = nullptr;
  const void* xz = nullptr;  // scalar, x's type; null: 0
  const void* wz = nullptr;  // 1 or m values, w's type; null: 0
  const int32_t* bias = nullptr;
  void* y = nullptr;
  bool xu8 = false, wu8 = false;
  int64_t nwz = 1;
  int64_t n = 0, c = 0, m = 0, groups = 1;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, p[3] = {0, 0, 0}, d[3] = {1, 1, 1};
  Requant q;
};

__global__ void qconv_direct(ConvArgs a) {
  const int64_t out_size = a.out[0] * a.out[1] * a.out[2];
  const int64_t total = a.n * a.m * out_size;
  const int64_t cg = a.c / a.groups, mg = a.m / a.groups;
  const int zx = a.xz ? ld8(a.xz, a.xu8, 0) : 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i;
    const int64_t o2 = r % a.out[2]; r /= a.out[2];
    const int64_t o1 = r % a.out[1]; r /= a.out[1];
    const int64_t o0 = r % a.out[0]; r /= a.out[0];
    const int64_t m = r % a.m, nn = r / a.m;
    const int64_t g = m / mg;
    const int zw = a.wz ? ld8(a.wz, a.wu8, a.nwz == 1 ? 0 : m) : 0;
    int64_t acc = 0;
    for (int64_t ci = 0; ci < cg; ++ci) {
      const int64_t xc = (nn * a.c + g * cg + ci) * a.in[0];
      const int64_t wc = (m * cg + ci) * a.k[0];
      for (int64_t k0 = 0; k0 < a.k[0]; ++k0) {
        const int64_t i0 = o0 * a.s[0] - a.p[0] + k0 * a.d[0];
        if (i0 < 0 || i0 >= a.in[0]) continue;
        for (int64_t k1 = 0; k1 < a.k[1]; ++k1) {
          const int64_t i1 = o1 * a.s[1] - a.p[1] + k1 * a.d[1];
          if (i1 < 0 || i1 >= a.in[1]) continue;
          for (int64_t k2 = 0; k2 < a.k[2]; ++k2) {
            const int64_t i2 = o2 * a.s[2] - a.p[2] + k2 * a.d[2];
            if (i2 < 0 || i2 >= a.in[2]) continue;
            const int xv = ld8(a.x, a.xu8, ((xc + i0) * a.in[1] + i1) * a.in[2] + i2) - zx;
            const int wv = ld8(a.w, a.wu8, ((wc + k0) * a.k[1] + k1) * a.k[2] + k2) - zw;
            acc += int64_t(xv * wv);
          }
        }
      }
    }
    if (a.bias) acc += a.bias[m];
    store(a.q, a.y, i, acc, m);
  }
}

// y[b, r, col] = sum_k (a - za)(b - zb), indices as the CPU kernel takes them: a's zero point by
// A's row over its own batch, b's by b's batch and column; a's scale by r, b's by column.
struct MatArgs {
  const void* a = nullptr;
  const void* b = nullptr;
  const void* az = nullptr;
  const void* bz = nullptr;
  void* y = nullptr;
  bool au8 = false, bu8 = false;
  int64_t naz = 1, nbz = 1;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool b_batched = false;
  Requant q;
  int64_t nas = 1;  // a's scale: per row r % nas
};

__global__ void qmatmul_direct(MatArgs a) {
  const int64_t total = a.batch * a.m * a.n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t col = i % a.n, r = (i / a.n) % a.m, bt = i / (a.n * a.m);
    const int64_t arow = bt * a.m + r;
    const int64_t bb = a.b_batched ? bt : 0;
    const int za = a.az ? ld8(a.az, a.au8, arow % a.naz) : 0;
    const int zb = a.bz ? ld8(a.bz, a.bu8, (bb * a.n + col) % a.nbz) : 0;
    const int64_t ao = arow * a.k, bo = bb * a.k * a.n + col;
    int64_t acc = 0;
    for (int64_t k = 0; k < a.k; ++k) acc += int64_t((ld8(a.a, a.au8, ao + k) - za) * (ld8(a.b, a.bu8, bo + k * a.n) - zb));
    Requant q = a.q;
    if (q.out != kOutInt32 && a.nas != 1) q.xs += r % a.nas;  // per-row activation scale
    store(q, a.y, i, acc, col);
  }
}

// ---- the int8 tensor-core GEMM ---------------------------------------------------------------

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

struct LtPlan {
  bool ok = false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  ~LtPlan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    for (auto l : {la, lb, lc}) if (l) cublasLtMatrixLayoutDestroy(l);
  }
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
  KILN_CUDA_CHECK(cudaMemcpy(st.w, w.data(), w.size(), cudaMemcpyHostToDevice));
  KILN_CUDA_CHECK(cudaMemcpy(st.wsum, sum.data(), sum.size() * 4, cudaMemcpyHostToDevice));
  KILN_CUDA_CHECK(cudaMemcpy(st.wz, wz.data(), wz.size() * 4, cudaMemcpyHostToDevice));
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
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.lc, CUDA_R_32I, uint64_t(st.rows_p), uint64_t(cols), st.rows_p));
  cublasLtMatmulPreference_t pref = nullptr;
  KILN_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t ws = lt_ws;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(c.cublaslt, p.desc, p.la, p.lb, p.lc, p.lc, pref, 1, &res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS) {
    p.ok = true;
    p.algo = res.algo;
    p.workspace = res.workspaceSize;
  }
  return slot.get();
}

// im2col of rows [p0, p0 + pc) of the conv's output pixels (n, o0, o1, o2) into col[pc, kp]:
// signed input values, the signed zero point where the window is outside the input (so it adds
// nothing), 0 in the K padding.
__global__ void qconv_im2col(ConvArgs a, int64_t p0, int64_t pc, int64_t kk_real, int64_t kp, int zx_signed, int8_t* col) {
  const int64_t total = pc * kp;
  const int off = a.xu8 ? 128 : 0;
  const int64_t ksz = a.k[0] * a.k[1] * a.k[2];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t kk = i % kp, pl = i / kp;
    int v = 0;
    if (kk < kk_real) {
      int64_t p = p0 + pl;
      const int64_t o2 = p % a.out[2]; p /= a.out[2];
      const int64_t o1 = p % a.out[1]; p /= a.out[1];
      const int64_t o0 = p % a.out[0];
      const int64_t nn = p / a.out[0];
      const int64_t ci = kk / ksz, kr = kk % ksz;
      const int64_t k0 = kr / (a.k[1] * a.k[2]), k1 = (kr / a.k[2]) % a.k[1], k2 = kr % a.k[2];
      const int64_t i0 = o0 * a.s[0] - a.p[0] + k0 * a.d[0];
      const int64_t i1 = o1 * a.s[1] - a.p[1] + k1 * a.d[1];
      const int64_t i2 = o2 * a.s[2] - a.p[2] + k2 * a.d[2];
      const bool in = i0 >= 0 && i0 < a.in[0] && i1 >= 0 && i1 < a.in[1] && i2 >= 0 && i2 < a.in[2];
      v = in ? ld8(a.x, a.xu8, (((nn * a.c + ci) * a.in[0] + i0) * a.in[1] + i1) * a.in[2] + i2) - off : zx_signed;
    }
    col[i] = int8_t(v);
  }
}

// Rows [r0, r0 + rc) of A [R, k] made signed into buf[rc, kp], 0 in the K padding.
__global__ void qmatmul_rows(const void* a, bool u8, int64_t r0, int64_t rc, int64_t k, int64_t kp, int8_t* buf) {
  const int64_t total = rc * kp;
  const int off = u8 ? 128 : 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t kk = i % kp, rl = i / kp;
    buf[i] = kk < k ? int8_t(ld8(a, u8, (r0 + rl) * k + kk) - off) : int8_t(0);
  }
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
    KILN_CUDA_CHECK(cublasLtMatmul(c.cublaslt, plan->desc, &one, st.w, plan->la, col, plan->lb, &zero, prod, plan->lc, prod,
                                   plan->lc, &plan->algo, base, plan->workspace, c.stream));
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

// ---- convolutions ----------------------------------------------------------------------------

Expected<ConvArgs> conv_args(LaunchContext& c, const Slots& s) {
  const DeviceTensor &x = c.inputs[size_t(s.x)], &w = c.inputs[size_t(s.w)], &y = c.outputs[0];
  const Node& n = c.node;
  if (x.dims.size() < 3 || x.dims.size() > 5 || w.dims.size() != x.dims.size() || y.dims.size() != x.dims.size())
    return err("input, weights and output ranks do not fit a 1-3-D convolution");
  const std::vector<int64_t> in(x.dims.begin() + 2, x.dims.end());
  KILN_ASSIGN_OR_RETURN(Window win, resolve_window(n, in, conv_kernel_shape(n, w.dims), false));
  ConvArgs a;
  a.x = x.data;
  a.w = w.data;
  a.y = y.data;
  a.xu8 = x.dtype == DataType::kUInt8;
  a.wu8 = w.dtype == DataType::kUInt8;
  if (const DeviceTensor* z = opt(c, s.xz)) {
    if (z->numel() != 1) return err("x_zero_point must be a scalar");
    a.xz = z->data;
  }
  if (const DeviceTensor* z = opt(c, s.wz)) {
    a.wz = z->data;
    a.nwz = z->numel();
  }
  a.n = x.dims[0];
  a.c = x.dims[1];
  a.m = y.dims[1];
  a.groups = n.attr_int("group", 1);
  if (a.groups < 1 || a.c % a.groups || a.m % a.groups || w.dims[1] * a.groups != a.c)
    return err("channels do not fit group ", a.groups);
  if (a.nwz != 1 && a.nwz != a.m) return err("w_zero_point must have 1 or ", a.m, " elements");
  const size_t nd = win.nd, lead = 3 - nd;
  for (size_t i = 0; i < nd; ++i) {
    if (win.out[i] != y.dims[2 + i]) return err("output dims differ from the window's");
    a.in[lead + i] = win.in[i];
    a.out[lead + i] = win.out[i];
    a.k[lead + i] = win.kernel[i];
    a.s[lead + i] = win.strides[i];
    a.p[lead + i] = win.pads[i];
    a.d[lead + i] = win.dilations[i];
  }
  if (const DeviceTensor* b = opt(c, s.bias)) {
    if (b->numel() != a.m) return err("bias must have ", a.m, " elements");
    a.bias = b->as<const int32_t>();
  }
  a.q = requant_of(c, s, false);
  if (a.q.out != kOutInt32 && a.q.nws != 1 && a.q.nws != a.m) return err("w_scale must have 1 or ", a.m, " elements");
  return a;
}

Status conv_direct(LaunchContext& c, const ConvArgs& a) {
  const int64_t total = a.n * a.m * a.out[0] * a.out[1] * a.out[2];
  if (total) qconv_direct<<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(a);
  return Status::ok();
}

Status run_qconv_direct(LaunchContext& c) {
  auto a = conv_args(c, slots_of(c.node));
  if (!a) return c.fail(a.status().message());
  return conv_direct(c, *a);
}

Status run_qconv_imma(LaunchContext& c) {
  const Slots s = slots_of(c.node);
  auto a = conv_args(c, s);
  if (!a) return c.fail(a.status().message());
  const int64_t out_size = a->out[0] * a->out[1] * a->out[2];
  const int64_t total = a->n * out_size;
  if (total == 0 || a->m == 0) return Status::ok();
  auto& st = c.state_as<QGemmState>();
  const Tensor* w = c.host_inputs[size_t(s.w)];
  const Tensor* xz = s.xz < int(c.host_inputs.size()) ? c.host_inputs[size_t(s.xz)] : nullptr;
  const Tensor* wz = s.wz < int(c.host_inputs.size()) ? c.host_inputs[size_t(s.wz)] : nullptr;
  if (!st.prepared) {
    st.prepared = true;
    if (w && a->groups == 1 && (!c.has_input(size_t(s.xz)) || xz) && (!c.has_input(size_t(s.wz)) || wz)) {
      const int64_t k = w->numel() / a->m;
      const int off = a->wu8 ? 128 : 0;
      KILN_RETURN_IF_ERROR(prepare_weights(st, a->m, k, signed_zero_points(wz, a->wu8),
                                           [&](int64_t r, int64_t kk) { return int(w->get_as_double(r * k + kk)) - off; }));
      st.zx = (xz ? int(xz->get_as_double(0)) : 0) - (a->xu8 ? 128 : 0);
    }
  }
  if (!st.usable) {
    say_direct_once(c, st, {}, "weights or zero points not constant, or groups above 1");
    return conv_direct(c, *a);
  }
  Epilogue e;
  e.wsum = st.wsum;
  e.wz = st.wz;
  e.bias = a->bias;
  e.rows = a->m;
  e.rows_p = st.rows_p;
  e.k = st.k;
  e.zx = st.zx;
  e.out_size = out_size;
  e.y = a->y;
  e.q = a->q;
  const ConvArgs args = *a;
  KILN_ASSIGN_OR_RETURN(bool ran, run_imma(c, st, total, e, [&](int64_t p0, int64_t n, int8_t* col) {
    qconv_im2col<<<cuda_grid_for(n * st.kp, kThreads), kThreads, 0, c.stream>>>(args, p0, n, st.k, st.kp, st.zx, col);
  }));
  if (ran) return Status::ok();
  say_direct_once(c, st, c.inputs[size_t(s.x)].dims, "no cuBLASLt int8 algorithm, or the workspace holds too few rows");
  return conv_direct(c, *a);
}

// ---- matrix products -------------------------------------------------------------------------

Expected<MatArgs> mat_args(LaunchContext& c, const Slots& s) {
  const DeviceTensor &A = c.inputs[size_t(s.x)], &B = c.inputs[size_t(s.w)], &y = c.outputs[0];
  if (A.dims.size() < 2 || B.dims.size() < 2) return err("operands of rank 1 run on the CPU");
  MatArgs a;
  a.a = A.data;
  a.b = B.data;
  a.y = y.data;
  a.au8 = A.dtype == DataType::kUInt8;
  a.bu8 = B.dtype == DataType::kUInt8;
  a.m = A.dims[A.dims.size() - 2];
  a.k = A.dims.back();
  a.n = B.dims.back();
  if (B.dims[B.dims.size() - 2] != a.k) return err("inner dimensions differ");
  const std::vector<int64_t> abat(A.dims.begin(), A.dims.end() - 2), bbat(B.dims.begin(), B.dims.end() - 2);
  int64_t na = 1, nb = 1;
  for (int64_t d : abat) na *= d;
  for (int64_t d : bbat) nb *= d;
  if (bbat.empty()) {
    a.batch = na;
    a.b_batched = false;
  } else if (abat == bbat) {
    a.batch = na;
    a.b_batched = true;
  } else {
    return err("batch dims ", dims_to_string(abat), " and ", dims_to_string(bbat), " (only equal ones, or a 2-D B, run on CUDA)");
  }
  if (const DeviceTensor* z = opt(c, s.xz)) { a.az = z->data; a.naz = std::max<int64_t>(1, z->numel()); }
  if (const DeviceTensor* z = opt(c, s.wz)) { a.bz = z->data; a.nbz = std::max<int64_t>(1, z->numel()); }
  a.q = requant_of(c, s, true);
  if (a.q.out != kOutInt32) a.nas = std::max<int64_t>(1, c.inputs[size_t(s.xs)].numel());
  return a;
}

Status mat_direct(LaunchContext& c, const MatArgs& a) {
  const int64_t total = a.batch * a.m * a.n;
  if (total == 0) return Status::ok();
  qmatmul_direct<<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(a);
  return Status::ok();
}

Status run_qmatmul_direct(LaunchContext& c) {
  auto a = mat_args(c, slots_of(c.node));
  if (!a) return c.fail(a.status().message());
  return mat_direct(c, *a);
}

Status run_qmatmul_imma(LaunchContext& c) {
  const Slots s = slots_of(c.node);
  auto a = mat_args(c, s);
  if (!a) return c.fail(a.status().message());
  const int64_t rows_total = a->batch * a->m;
  if (rows_total == 0 || a->n == 0) return Status::ok();
  auto& st = c.state_as<QGemmState>();
  const Tensor* b = c.host_inputs[size_t(s.w)];
  const Tensor* az = s.xz < int(c.host_inputs.size()) ? c.host_inputs[size_t(s.xz)] : nullptr;
  const Tensor* bz = s.wz < int(c.host_inputs.size()) ? c.host_inputs[size_t(s.wz)] : nullptr;
  if (!st.prepared) {
    st.prepared = true;
    const bool params_const = (!c.has_input(size_t(s.xz)) || (az && az->numel() == 1)) &&
                              (!c.has_input(size_t(s.wz)) || bz) && a->nas == 1 && a->k > 0;
    if (b && !a->b_batched && params_const) {
      const int64_t k = a->k, n = a->n;
      const int off = a->bu8 ? 128 : 0;
      KILN_RETURN_IF_ERROR(prepare_weights(st, n, k, signed_zero_points(bz, a->bu8),
                                           [&](int64_t col, int64_t kk) { return int(b->get_as_double(kk * n + col)) - off; }));
      st.zx = (az ? int(az->get_as_double(0)) : 0) - (a->au8 ? 128 : 0);
    }
  }
  if (!st.usable) {
    say_direct_once(c, st, {}, "B or the zero points not constant, a batched B, or per-row activation parameters");
    return mat_direct(c, *a);
  }
  Epilogue e;
  e.wsum = st.wsum;
  e.wz = st.wz;
  e.rows = a->n;
  e.rows_p = st.rows_p;
  e.k = st.k;
  e.zx = st.zx;
  e.out_size = 0;
  e.y = a->y;
  e.q = a->q;
  const void* A = a->a;
  const bool au8 = a->au8;
  KILN_ASSIGN_OR_RETURN(bool ran, run_imma(c, st, rows_total, e, [&](int64_t r0, int64_t n, int8_t* buf) {
    qmatmul_rows<<<cuda_grid_for(n * st.kp, kThreads), kThreads, 0, c.stream>>>(A, au8, r0, n, st.k, st.kp, buf);
  }));
  if (ran) return Status::ok();
  say_direct_once(c, st, c.inputs[size_t(s.x)].dims, "no cuBLASLt int8 algorithm, or the workspace holds too few rows");
  return mat_direct(c, *a);
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

Support check_conv_direct(const Node& n) { return check_common(n, true); }
Support check_matmul_direct(const Node& n) { return check_common(n, false); }

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
Support check_conv_imma(const Node& n) { return check_imma(n, true); }
Support check_matmul_imma(const Node& n) { return check_imma(n, false); }

}  // namespace

Support cuda_int8_gate() {
  const char* on = std::getenv("KILN_CUDA_INT8");
  if (on && std::strcmp(on, "1") == 0) return Support::yes();
  return Support::no("the CUDA integer kernels await their first GPU check (KILN_CUDA_INT8=1 enables them)");
}

void register_cuda_qlinear_kernels(CudaKernelTable& t) {
  for (const char* op : {"QLinearConv", "ConvInteger"}) {
    t.add({"", op, "cuda.qconv.imma", run_qconv_imma, check_conv_imma});
    t.add({"", op, "cuda.qconv.direct", run_qconv_direct, check_conv_direct});
  }
  for (const char* op : {"QLinearMatMul", "MatMulInteger"}) {
    t.add({"", op, "cuda.qmatmul.imma", run_qmatmul_imma, check_matmul_imma});
    t.add({"", op, "cuda.qmatmul.direct", run_qmatmul_direct, check_matmul_direct});
  }
}

}  // namespace kiln::cuda
