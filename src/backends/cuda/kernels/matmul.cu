// CUDA kernels of the matmul family: MatMul, Gemm and kiln.MatMulBias on cuBLASLt (run_gemm, gemm_epilogue.h).
// cuBLASLt is column-major; a row-major Y = op(A) op(B) is the column-major Y^T = op(B)^T op(A)^T,
// so every call swaps the operands instead of transposing any data.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include "core/log.h"

#include "backends/cuda/cuda_status.h"
#include "ir/activation.h"
#include "backends/cuda/kernels/gemm_epilogue.h"
#include "backends/cuda/launch.h"

namespace kiln::cuda {

namespace {

cudaDataType_t cuda_type(DataType t) {
  switch (t) {
    case DataType::kFloat16: return CUDA_R_16F;
    case DataType::kBFloat16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

// Largest power of two (<= 256) dividing the address: cuBLASLt's heuristic must know it.
int64_t alignment_of(const void* p) {
  uintptr_t v = reinterpret_cast<uintptr_t>(p);
  int64_t a = 256;
  while (a > 1 && (v % a)) a /= 2;
  return a;
}
int64_t alignment_of_bytes(int64_t bytes) {
  if (bytes == 0) return 256;
  int64_t a = 256;
  while (a > 1 && (bytes % a)) a /= 2;
  return a;
}

}  // namespace

GemmPlans::GemmPlans() = default;
GemmPlans::~GemmPlans() = default;

namespace {

using Plan = GemmPlan;

// A cuBLASLt algorithm as the tail of a tactic id: its configuration attributes (what
// cublasLtMatmulAlgoInit and the config setters rebuild it from) and the operand alignment it
// was picked for.
struct AlgoConfig {
  int32_t id = 0, splitk = 1;
  uint32_t tile = 0, reduction = 0, swizzle = 0, custom = 0, stages = 0;
  uint16_t inner = 0, cluster = 0;
  int64_t align = 256;
};

AlgoConfig read_config(const cublasLtMatmulAlgo_t& a, int64_t align) {
  AlgoConfig c;
  size_t w = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_ID, &c.id, sizeof c.id, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_TILE_ID, &c.tile, sizeof c.tile, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &c.splitk, sizeof c.splitk, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &c.reduction, sizeof c.reduction, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &c.swizzle, sizeof c.swizzle, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &c.custom, sizeof c.custom, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_STAGES_ID, &c.stages, sizeof c.stages, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, &c.inner, sizeof c.inner, &w);
  cublasLtMatmulAlgoConfigGetAttribute(&a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &c.cluster, sizeof c.cluster, &w);
  c.align = align;
  return c;
}

std::string config_name(const AlgoConfig& c) {
  return "algo=" + std::to_string(c.id) + ",tile=" + std::to_string(c.tile) + ",stages=" + std::to_string(c.stages) +
         ",splitk=" + std::to_string(c.splitk) + ",reduction=" + std::to_string(c.reduction) +
         ",swizzle=" + std::to_string(c.swizzle) + ",custom=" + std::to_string(c.custom) +
         ",inner=" + std::to_string(c.inner) + ",cluster=" + std::to_string(c.cluster) + ",align=" + std::to_string(c.align);
}

// Parses config_name's form; false unless every field is there.
bool parse_config(const std::string& s, AlgoConfig* c) {
  std::map<std::string, int64_t> f;
  size_t at = 0;
  while (at < s.size()) {
    size_t end = s.find(',', at), eq = s.find('=', at);
    if (end == std::string::npos) end = s.size();
    if (eq == std::string::npos || eq > end) return false;
    try {
      f[s.substr(at, eq - at)] = std::stoll(s.substr(eq + 1, end - eq - 1));
    } catch (...) {
      return false;
    }
    at = end + 1;
  }
  for (const char* k : {"algo", "tile", "stages", "splitk", "reduction", "swizzle", "custom", "inner", "cluster", "align"})
    if (!f.count(k)) return false;
  c->id = int32_t(f["algo"]);
  c->tile = uint32_t(f["tile"]);
  c->stages = uint32_t(f["stages"]);
  c->splitk = int32_t(f["splitk"]);
  c->reduction = uint32_t(f["reduction"]);
  c->swizzle = uint32_t(f["swizzle"]);
  c->custom = uint32_t(f["custom"]);
  c->inner = uint16_t(f["inner"]);
  c->cluster = uint16_t(f["cluster"]);
  c->align = f["align"];
  return true;
}

cublasStatus_t make_algo(cublasLtHandle_t h, cublasComputeType_t ct, cudaDataType_t t, const AlgoConfig& c,
                         cublasLtMatmulAlgo_t* a) {
  cublasStatus_t s = cublasLtMatmulAlgoInit(h, ct, CUDA_R_32F, t, t, t, t, c.id, a);
  auto set = [&](cublasLtMatmulAlgoConfigAttributes_t attr, const void* v, size_t n) {
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulAlgoConfigSetAttribute(a, attr, v, n);
  };
  set(CUBLASLT_ALGO_CONFIG_TILE_ID, &c.tile, sizeof c.tile);
  set(CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &c.splitk, sizeof c.splitk);
  set(CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &c.reduction, sizeof c.reduction);
  set(CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &c.swizzle, sizeof c.swizzle);
  set(CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &c.custom, sizeof c.custom);
  set(CUBLASLT_ALGO_CONFIG_STAGES_ID, &c.stages, sizeof c.stages);
  set(CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, &c.inner, sizeof c.inner);
  set(CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &c.cluster, sizeof c.cluster);
  return s;
}

cublasLtEpilogue_t lt_epilogue(GemmEpilogue e) {
  switch (e) {
    case GemmEpilogue::kBias: return CUBLASLT_EPILOGUE_BIAS;
    case GemmEpilogue::kRelu: return CUBLASLT_EPILOGUE_RELU;
    case GemmEpilogue::kBiasRelu: return CUBLASLT_EPILOGUE_RELU_BIAS;
    case GemmEpilogue::kGelu: return CUBLASLT_EPILOGUE_GELU;
    case GemmEpilogue::kBiasGelu: return CUBLASLT_EPILOGUE_GELU_BIAS;
    default: return CUBLASLT_EPILOGUE_DEFAULT;
  }
}

bool has_bias(GemmEpilogue e) {
  return e == GemmEpilogue::kBias || e == GemmEpilogue::kBiasRelu || e == GemmEpilogue::kBiasGelu;
}

Status make_layout(cublasLtMatrixLayout_t* l, cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                   int64_t stride) {
  KILN_CUDA_CHECK(cublasLtMatrixLayoutCreate(l, t, uint64_t(rows), uint64_t(cols), ld));
  if (batch > 1) {
    int32_t b = int32_t(batch);
    KILN_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b, sizeof(b)));
    KILN_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return Status::ok();
}

Status build_plan(LaunchContext& ctx, const GemmArgs& g, int64_t align, Plan& p) {
  const cudaDataType_t t = cuda_type(g.dtype);
  const bool f32 = g.dtype == DataType::kFloat32;
  cublasComputeType_t ct = f32 && ctx.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  KILN_CUDA_CHECK(cublasLtMatmulDescCreate(&p.desc, ct, CUDA_R_32F));
  // Lt's A is our B, Lt's B is our A (column-major view of row-major data).
  cublasOperation_t opa = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, opb = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
  cublasLtEpilogue_t epi = lt_epilogue(g.epilogue);
  KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (has_bias(g.epilogue)) {
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof(t)));
    KILN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  }
  KILN_RETURN_IF_ERROR(make_layout(&p.la, t, g.trans_b ? g.k : g.n, g.trans_b ? g.n : g.k, g.ldb, g.batch, g.stride_b));
  KILN_RETURN_IF_ERROR(make_layout(&p.lb, t, g.trans_a ? g.m : g.k, g.trans_a ? g.k : g.m, g.lda, g.batch, g.stride_a));
  KILN_RETURN_IF_ERROR(make_layout(&p.ly, t, g.n, g.m, g.ldy, g.batch, g.stride_y));
  const uint64_t limit = ctx.workspace ? ctx.workspace_bytes : 0;
  // The build's choice, if it runs here: first rebuilt from its configuration; where cuBLASLt
  // refuses that (some algorithms carry state the configuration attributes do not set), the
  // heuristic's list for these shapes is searched for the same configuration below.
  AlgoConfig rec;
  std::string why;
  const bool recorded = !g.algo.empty();
  if (recorded) {
    if (!parse_config(g.algo, &rec))
      return ctx.fail("tactic ", ctx.tactic, " names a cuBLASLt algorithm this build cannot read; rebuild the engine");
    if (align >= rec.align) {
      cublasLtMatmulHeuristicResult_t r{};
      cublasStatus_t st = make_algo(ctx.cublaslt, ct, t, rec, &p.algo);
      if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulAlgoCheck(ctx.cublaslt, p.desc, p.la, p.lb, p.ly, p.ly, &p.algo, &r);
      if (st == CUBLAS_STATUS_SUCCESS && r.workspaceSize <= limit) {
        p.workspace = r.workspaceSize;
        return Status::ok();
      }
      why = st != CUBLAS_STATUS_SUCCESS ? std::string("cublasLtMatmulAlgoCheck: ") + cublasLtGetStatusString(st)
                                        : "workspace above the limit";
    } else {
      why = "operands aligned to " + std::to_string(align) + " bytes, the algorithm was picked for " +
            std::to_string(rec.align);
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  KILN_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t ws = limit;
  uint32_t al = uint32_t(align);
  Status s = check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
                   "workspace preference");
  for (auto a : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                 CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    if (s) s = check(cublasLtMatmulPreferenceSetAttribute(pref, a, &al, sizeof(al)), "alignment preference");
  // Tuning asks for the heuristic's top N (each a candidate id); a recorded choice searches the
  // top 32 for its configuration; a plain build takes the first.
  const int want = recorded ? 32 : g.candidates ? std::max(1, std::min(g.max_candidates, 32)) : 1;
  std::vector<cublasLtMatmulHeuristicResult_t> results(want);
  int found = 0;
  if (s)
    s = check(cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt, p.desc, p.la, p.lb, p.ly, p.ly, pref, want, results.data(), &found),
              "cublasLtMatmulAlgoGetHeuristic");
  cublasLtMatmulPreferenceDestroy(pref);
  KILN_RETURN_IF_ERROR(s);
  if (found < 1) return ctx.fail("cuBLASLt found no algorithm for a ", g.m, "x", g.n, "x", g.k, " GEMM");
  if (recorded) {
    const std::string want_name = config_name(rec);
    for (int i = 0; i < found; ++i)
      if (results[i].state == CUBLAS_STATUS_SUCCESS && config_name(read_config(results[i].algo, rec.align)) == want_name) {
        p.algo = results[i].algo;
        p.workspace = results[i].workspaceSize;
        return Status::ok();
      }
    log_recorded_unusable(ctx, why.empty() ? "not among cuBLASLt's algorithms for these shapes" : why,
                          "cuBLASLt's heuristic picks for these shapes");
  }
  const cublasLtMatmulHeuristicResult_t& res = results[0];
  p.algo = res.algo;
  p.workspace = res.workspaceSize;
  for (int i = 0; g.candidates && i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    std::string id = g.id_prefix + config_name(read_config(results[i].algo, align));
    if (std::find(g.candidates->begin(), g.candidates->end(), id) == g.candidates->end()) g.candidates->push_back(id);
  }
  if (g.selected) {
    const AlgoConfig c = read_config(p.algo, align);
    *g.selected = g.id_prefix + config_name(c);
    // The engine stores the configuration, not the heuristic's opaque struct: say so if the
    // struct rebuilt from it differs (the run would still check it, and pick again if needed).
    cublasLtMatmulAlgo_t again{};
    if (make_algo(ctx.cublaslt, ct, t, c, &again) != CUBLAS_STATUS_SUCCESS || std::memcmp(&again, &p.algo, sizeof again) != 0)
      log_verbose(ctx.node.label() + ": cuBLASLt algorithm " + *g.selected + " rebuilt from its configuration differs from the heuristic's");
  }
  return Status::ok();
}

}  // namespace

Status run_gemm(LaunchContext& ctx, const GemmArgs& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return Status::ok();
  if (g.k == 0) return ctx.fail("run_gemm with k = 0 (callers handle the empty product)");
  const int64_t es = int64_t(dtype_size(g.dtype));
  int64_t align = 256;
  for (const void* p : {g.a, g.b, static_cast<const void*>(g.y), g.c, g.bias}) if (p) align = std::min(align, alignment_of(p));
  for (int64_t x : {g.lda, g.ldb, g.ldy, g.stride_a, g.stride_b, g.stride_y}) align = std::min(align, alignment_of_bytes(x * es));
  if (!g.plans) return ctx.fail("run_gemm without the layer's plans");
  const std::array<int64_t, 18> key{int64_t(g.dtype) * 4 + g.trans_a * 2 + g.trans_b, g.m, g.n, g.k,
                                    g.lda, g.ldb, g.ldy, int64_t(g.epilogue), g.batch, g.stride_a, g.stride_b, g.stride_y, align,
                                    ctx.tf32, int64_t(ctx.workspace ? ctx.workspace_bytes : 0),
                                    reinterpret_cast<int64_t>(has_bias(g.epilogue) ? g.bias : nullptr), 0, 0};
  auto& plans = g.plans->plans;
  auto it = plans.find(key);
  if (it == plans.end()) {
    if (plans.size() > 256) plans.clear();  // bounded: shape churn never grows it without end
    auto p = std::make_unique<Plan>();
    KILN_RETURN_IF_ERROR(build_plan(ctx, g, align, *p));
    it = plans.emplace(key, std::move(p)).first;
  }
  const Plan& p = *it->second;
  const void* cptr = g.c ? g.c : g.y;
  KILN_CUDA_CHECK(cublasLtMatmul(ctx.cublaslt, p.desc, &g.alpha, g.b, p.la, g.a, p.lb, &g.beta, cptr, p.ly, g.y, p.ly,
                                 &p.algo, ctx.workspace, p.workspace, ctx.stream));
  return Status::ok();
}

namespace {

constexpr size_t kMaxRank = 8;

// MatMul, Gemm and kiln.MatMulBias: the layer's plans live in its per-context state; the
// algorithm is the tactic id's tail (cuda.gemm.cublaslt.<algo>), picked at build time.
struct MatmulState : LayerState {
  GemmPlans gemm;
};
void use_layer_plans(LaunchContext& ctx, GemmArgs& g) {
  g.plans = &ctx.state_as<MatmulState>().gemm;
  g.algo = ctx.tactic_rest("cuda.gemm.cublaslt");
  if (g.algo == "heuristic") g.algo.clear();
  g.selected = ctx.selected;
  g.id_prefix = "cuda.gemm.cublaslt.";
  g.candidates = ctx.candidates;
  g.max_candidates = ctx.max_candidates;
}

Status matmul(LaunchContext& ctx) {
  const DeviceTensor &ta = ctx.inputs[0], &tb = ctx.inputs[1], &ty = ctx.outputs[0];
  const std::vector<int64_t> &ad = ta.dims, &bd = tb.dims;
  if (ad.empty() || bd.empty()) return ctx.fail("MatMul operands must have rank >= 1");
  if (ad.size() > kMaxRank || bd.size() > kMaxRank) return ctx.fail("MatMul rank above ", kMaxRank);
  // numpy.matmul's 1-D promotion, read in place (no copies in the steady state).
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  const int64_t m = a1 ? 1 : ad[ad.size() - 2], k = ad.back(), n = b1 ? 1 : bd.back();
  if ((b1 ? bd[0] : bd[bd.size() - 2]) != k) return ctx.fail("inner dimensions differ");
  // Broadcast batch dims, right-aligned.
  const size_t ra = a1 ? 0 : ad.size() - 2, rb = b1 ? 0 : bd.size() - 2, r = std::max(ra, rb);
  int64_t abat[kMaxRank], bbat[kMaxRank], bat[kMaxRank], idx[kMaxRank];
  int64_t na = 1, nbb = 1, nb = 1;
  for (size_t i = 0; i < r; ++i) {
    abat[i] = i + ra >= r ? ad[i + ra - r] : 1;
    bbat[i] = i + rb >= r ? bd[i + rb - r] : 1;
    if (abat[i] != bbat[i] && abat[i] != 1 && bbat[i] != 1) return ctx.fail("batch dims do not broadcast");
    bat[i] = abat[i] == 1 ? bbat[i] : abat[i];
    na *= abat[i];
    nbb *= bbat[i];
    nb *= bat[i];
    idx[i] = 0;
  }
  if (ty.numel() == 0) return Status::ok();
  if (k == 0) return check(cudaMemsetAsync(ty.data, 0, ty.nbytes(), ctx.stream), "MatMul zero fill");
  GemmArgs g;
  g.dtype = ty.dtype;
  g.m = m; g.n = n; g.k = k;
  g.a = ta.data; g.lda = k;
  g.b = tb.data; g.ldb = n;
  g.y = ty.data; g.ldy = n;
  use_layer_plans(ctx, g);
  if (nbb == 1 && na == nb) {  // one B: fold A's batch into rows, one GEMM
    g.m = nb * m;
    return run_gemm(ctx, g);
  }
  if ((na == nb || na == 1) && (nbb == nb || nbb == 1)) {  // strided batch, stride 0 broadcasts
    g.batch = nb;
    g.stride_a = na == 1 ? 0 : m * k;
    g.stride_b = nbb == 1 ? 0 : k * n;
    g.stride_y = m * n;
    return run_gemm(ctx, g);
  }
  // Mixed broadcast (e.g. [2,1] x [1,3]): one GEMM per output batch.
  const size_t es = dtype_size(ty.dtype);
  for (int64_t i = 0; i < nb; ++i) {
    int64_t oa = 0, ob = 0;
    for (size_t d = 0; d < r; ++d) {
      oa = oa * abat[d] + (abat[d] == 1 ? 0 : idx[d]);
      ob = ob * bbat[d] + (bbat[d] == 1 ? 0 : idx[d]);
    }
    GemmArgs gi = g;
    gi.a = static_cast<const char*>(ta.data) + oa * m * k * es;
    gi.b = static_cast<const char*>(tb.data) + ob * k * n * es;
    gi.y = static_cast<char*>(ty.data) + i * m * n * es;
    KILN_RETURN_IF_ERROR(run_gemm(ctx, gi));
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < bat[d]) break;
      idx[d] = 0;
    }
  }
  return Status::ok();
}

// y[i, j] = scale * c[i * sm + j * sn]: Gemm's C broadcast into the output.
template <class T>
__global__ void broadcast_c(const T* c, T* y, int64_t m, int64_t n, int64_t sm, int64_t sn, float scale) {
  const int64_t total = m * n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i / n, q = i % n;
    y[i] = T(scale * float(c[r * sm + q * sn]));
  }
}

template <class T>
void launch_broadcast_c(LaunchContext& ctx, const void* c, void* y, int64_t m, int64_t n, int64_t sm, int64_t sn,
                        float scale) {
  broadcast_c<T><<<cuda_grid_for(m * n, 256), 256, 0, ctx.stream>>>(static_cast<const T*>(c), static_cast<T*>(y), m,
                                                                     n, sm, sn, scale);
}

Status gemm(LaunchContext& ctx) {
  const DeviceTensor &ta = ctx.inputs[0], &tb = ctx.inputs[1], &ty = ctx.outputs[0];
  if (ta.dims.size() != 2 || tb.dims.size() != 2) return ctx.fail("Gemm operands must be matrices");
  const Node& nd = ctx.node;
  GemmArgs g;
  g.dtype = ty.dtype;
  g.trans_a = nd.attr_int("transA", 0) != 0;
  g.trans_b = nd.attr_int("transB", 0) != 0;
  g.m = g.trans_a ? ta.dims[1] : ta.dims[0];
  g.k = g.trans_a ? ta.dims[0] : ta.dims[1];
  g.n = g.trans_b ? tb.dims[0] : tb.dims[1];
  g.a = ta.data; g.lda = ta.dims[1];
  g.b = tb.data; g.ldb = tb.dims[1];
  g.y = ty.data; g.ldy = g.n;
  g.alpha = nd.attr_float("alpha", 1.f);
  const float beta = nd.attr_float("beta", 1.f);
  use_layer_plans(ctx, g);
  if (g.m == 0 || g.n == 0) return Status::ok();
  const bool use_c = ctx.has_input(2) && beta != 0.f;
  if (use_c) {
    const DeviceTensor& tc = ctx.inputs[2];
    const size_t cr = tc.dims.size();
    const int64_t cd[2] = {cr >= 2 ? tc.dims[cr - 2] : 1, cr >= 1 ? tc.dims[cr - 1] : 1};
    if (cr > 2 || (cd[0] != 1 && cd[0] != g.m) || (cd[1] != 1 && cd[1] != g.n))
      return ctx.fail("C does not broadcast to the output");
    if (g.k > 0 && beta == 1.f && cd[0] == 1 && cd[1] == g.n) {  // a row vector: the BIAS epilogue
      g.bias = tc.data;
      g.epilogue = GemmEpilogue::kBias;
      return run_gemm(ctx, g);
    }
    if (g.k > 0 && cd[0] == g.m && cd[1] == g.n) {  // full C: cuBLASLt reads it directly
      g.c = tc.data;
      g.beta = beta;
      return run_gemm(ctx, g);
    }
    const int64_t sm = cd[0] == 1 ? 0 : cd[1], sn = cd[1] == 1 ? 0 : 1;
    const float scale = g.k > 0 ? 1.f : beta;  // with k == 0 the output is beta * C alone
    switch (ty.dtype) {
      case DataType::kFloat32: launch_broadcast_c<float>(ctx, tc.data, ty.data, g.m, g.n, sm, sn, scale); break;
      case DataType::kFloat16: launch_broadcast_c<__half>(ctx, tc.data, ty.data, g.m, g.n, sm, sn, scale); break;
      case DataType::kBFloat16: launch_broadcast_c<__nv_bfloat16>(ctx, tc.data, ty.data, g.m, g.n, sm, sn, scale); break;
      default: return ctx.fail("no CUDA Gemm for type ", dtype_name(ty.dtype));
    }
    if (g.k == 0) return Status::ok();
    g.beta = beta;
    return run_gemm(ctx, g);
  }
  if (g.k == 0) return check(cudaMemsetAsync(ty.data, 0, ty.nbytes(), ctx.stream), "Gemm zero fill");
  return run_gemm(ctx, g);
}

// y = gelu(y), the exact erf form, in place: kiln.MatMulBias's Gelu in float32, where cuBLASLt's
// GELU epilogue (the tanh approximation, up to 5e-4 off) would exceed the float32 error bound.
__global__ void gelu_erf_inplace(float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = y[i];
    y[i] = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  }
}

// kiln.MatMulBias: A [..., M, K] x B [K, N] + bias [N], act [+ residual Z]; A's batch folds into
// rows, so one GEMM with a cuBLASLt epilogue, Z read as the GEMM's C operand (beta = 1). In float16/bfloat16 Gelu uses the GELU_BIAS epilogue (tanh
// form: its 5e-4 worst-case difference from erf is under half an float16 ulp at that magnitude).
Status matmul_bias(LaunchContext& ctx) {
  const DeviceTensor &ta = ctx.inputs[0], &tb = ctx.inputs[1], &tbias = ctx.inputs[2], &ty = ctx.outputs[0];
  if (ta.dims.size() < 2 || tb.dims.size() != 2 || tbias.numel() != tb.dims[1])
    return ctx.fail("kiln.MatMulBias wants A [..., M, K], B [K, N], bias [N]");
  const int64_t k = ta.dims.back(), n = tb.dims[1];
  if (tb.dims[0] != k) return ctx.fail("inner dimensions differ");
  if (ty.numel() == 0) return Status::ok();
  if (k == 0) return ctx.fail("kiln.MatMulBias with K = 0");
  const Activation act = parse_activation(ctx.node.attr_string("activation", "")).value_or(Activation::kNone);
  GemmArgs g;
  g.dtype = ty.dtype;
  g.m = ta.numel() / k; g.n = n; g.k = k;
  g.a = ta.data; g.lda = k;
  g.b = tb.data; g.ldb = n;
  g.y = ty.data; g.ldy = n;
  g.bias = tbias.data;
  use_layer_plans(ctx, g);
  if (ctx.has_input(3)) {
    if (ctx.inputs[3].numel() != ty.numel() || act != Activation::kNone) return ctx.fail("residual does not match the output");
    g.c = ctx.inputs[3].data;
    g.beta = 1.f;
  }
  const bool exact_gelu = act == Activation::kGelu && ty.dtype == DataType::kFloat32;
  g.epilogue = act == Activation::kRelu ? GemmEpilogue::kBiasRelu
               : act == Activation::kGelu && !exact_gelu ? GemmEpilogue::kBiasGelu : GemmEpilogue::kBias;
  KILN_RETURN_IF_ERROR(run_gemm(ctx, g));
  if (exact_gelu)
    gelu_erf_inplace<<<cuda_grid_for(ty.numel(), 256), 256, 0, ctx.stream>>>(ty.as<float>(), ty.numel());
  return Status::ok();
}

Support float_types(const Node& n) {
  for (const Value* v : n.inputs) {
    if (v && v->dtype != DataType::kFloat32 && v->dtype != DataType::kFloat16 && v->dtype != DataType::kBFloat16)
      return Support::no(std::string("element type ") + dtype_name(v->dtype));
    if (v && v->shape.rank_known() && v->shape.rank() > kMaxRank) return Support::no("rank above 8");
  }
  if (n.outputs.empty() || !n.outputs[0]) return Support::no("no output");
  return Support::yes();
}

Support check_gemm(const Node& n) {
  Support s = float_types(n);
  if (!s.ok) return s;
  if (n.opset < 7) return Support::no("Gemm before opset 7 (broadcast attribute)");
  for (size_t i = 0; i < 2; ++i)
    if (n.inputs[i]->shape.rank_known() && n.inputs[i]->shape.rank() != 2) return Support::no("Gemm operand is not 2-D");
  return Support::yes();
}

}  // namespace

void register_cuda_matmul_kernels(CudaKernelTable& t) {
  // Tactic family cuda.gemm.cublaslt: the build records cuBLASLt's algorithm after it.
  t.add({"", "MatMul", "cuda.gemm.cublaslt", matmul, float_types, false, true});
  t.add({"", "Gemm", "cuda.gemm.cublaslt", gemm, check_gemm, false, true});
  t.add({"kiln", "MatMulBias", "cuda.gemm.cublaslt", matmul_bias, float_types, false, true});
}

}  // namespace kiln::cuda
