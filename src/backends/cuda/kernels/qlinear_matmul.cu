// CUDA kernels of QLinearMatMul and MatMulInteger (8-bit data, a 2-D B or one of A's batch): the
// int8 tensor-core GEMM over a signed copy of A (cuda.qmatmul.imma) or the direct kernel
// (cuda.qmatmul.direct). The arithmetic, the tactics and the zero-point algebra:
// qlinear_common.cuh.
#include "backends/cuda/kernels/qlinear_common.cuh"

namespace kiln::cuda {

namespace {

// ---- direct kernel ---------------------------------------------------------------------------

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

// Rows [r0, r0 + rc) of A [R, k] made signed into buf[rc, kp], 0 in the K padding.
__global__ void qmatmul_rows(const void* a, bool u8, int64_t r0, int64_t rc, int64_t k, int64_t kp, int8_t* buf) {
  const int64_t total = rc * kp;
  const int off = u8 ? 128 : 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t kk = i % kp, rl = i / kp;
    buf[i] = kk < k ? int8_t(ld8(a, u8, (r0 + rl) * k + kk) - off) : int8_t(0);
  }
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
  const Tensor *b = c.host_input(size_t(s.w)), *az = c.host_input(size_t(s.xz)), *bz = c.host_input(size_t(s.wz));
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
  const void* A = a->a;
  const bool au8 = a->au8;
  KILN_ASSIGN_OR_RETURN(bool ran, run_imma(c, st, rows_total, epilogue_of(st, nullptr, 0, a->y, a->q), [&](int64_t r0, int64_t n, int8_t* buf) {
    qmatmul_rows<<<cuda_grid_for(n * st.kp, kThreads), kThreads, 0, c.stream>>>(A, au8, r0, n, st.k, st.kp, buf);
  }));
  if (ran) return Status::ok();
  say_direct_once(c, st, c.inputs[size_t(s.x)].dims, "no cuBLASLt int8 algorithm, or the workspace holds too few rows");
  return mat_direct(c, *a);
}

Support check_matmul_direct(const Node& n) { return check_common(n, false); }
Support check_matmul_imma(const Node& n) { return check_imma(n, false); }

}  // namespace

void register_cuda_qlinear_matmul_kernels(CudaKernelTable& t) {
  for (const char* op : {"QLinearMatMul", "MatMulInteger"}) {
    t.add({"", op, "cuda.qmatmul.imma", run_qmatmul_imma, check_matmul_imma});
    t.add({"", op, "cuda.qmatmul.direct", run_qmatmul_direct, check_matmul_direct});
  }
}

}  // namespace kiln::cuda
