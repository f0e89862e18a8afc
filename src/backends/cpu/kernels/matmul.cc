// CPU kernels of the matmul family. Float MatMul/Gemm go through OpenBLAS (gemm.h);
// float16/bfloat16 convert to float first; integer types use plain loops. The quantized
// forms subtract zero points into double and reuse the double GEMM, which is exact for
// 8-bit operands.
#include <cmath>
#include <limits>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/gemm.h"
#include "ir/ops/shape_rules.h"

namespace kiln::cpu {

void register_einsum_kernels(KernelTable& t);

namespace {

// numpy.matmul geometry after 1-D promotion.
struct MatMulPlan {
  int64_t m = 1, n = 1, k = 1;
  std::vector<int64_t> a_batch, b_batch, batch;
};

Expected<MatMulPlan> plan_matmul(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (a.empty() || b.empty()) return err("MatMul operands must have rank >= 1");
  std::vector<int64_t> ad = a, bd = b;
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  MatMulPlan p;
  p.m = ad[ad.size() - 2];
  p.k = ad.back();
  p.n = bd.back();
  if (bd[bd.size() - 2] != p.k) return err("inner dimensions differ: ", dims_to_string(a), " x ", dims_to_string(b));
  p.a_batch.assign(ad.begin(), ad.end() - 2);
  p.b_batch.assign(bd.begin(), bd.end() - 2);
  KILN_ASSIGN_OR_RETURN(p.batch, broadcast_dims({p.a_batch, p.b_batch}));
  return p;
}

int64_t prod(const std::vector<int64_t>& d) {
  int64_t r = 1;
  for (int64_t x : d) r *= x;
  return r;
}

// y[batch, m, n] = a[batch, m, k] * b[batch, k, n] with broadcast batches.
template <class C>
void run_matmul(const MatMulPlan& p, const C* a, const C* b, C* y, GemmEngine e = GemmEngine::kBlas) {
  const int64_t mk = p.m * p.k, kn = p.k * p.n, mn = p.m * p.n;
  if (prod(p.b_batch) == 1 && prod(p.a_batch) == prod(p.batch)) {
    // B is one matrix: fold A's batch into rows, one GEMM (the common Linear/attention case).
    gemm<C>(false, false, prod(p.batch) * p.m, p.n, p.k, C(1), a, p.k, b, p.n, C(0), y, p.n, e);
    return;
  }
  for_each_broadcast<2>(p.batch, {p.a_batch, p.b_batch}, [&](int64_t i, const std::array<int64_t, 2>& o) {
    gemm<C>(false, false, p.m, p.n, p.k, C(1), a + o[0] * mk, p.k, b + o[1] * kn, p.n, C(0), y + i * mn, p.n, e);
  });
}

Status matmul(KernelContext& ctx) {
  const Tensor &a = ctx.input(0), &b = ctx.input(1);
  Tensor& y = ctx.output(0);
  auto plan = plan_matmul(a.dims(), b.dims());
  if (!plan) return ctx.fail(plan.status().message());
  Status st = visit_dtype(a.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    if constexpr (std::is_same_v<T, C>) {
      run_matmul<T>(*plan, a.data<T>(), b.data<T>(), y.mutable_data<T>(), ctx.gemm_engine());
    } else {
      auto ac = to_compute<C>(a.data<T>(), a.numel()), bc = to_compute<C>(b.data<T>(), b.numel());
      std::vector<C> yc(static_cast<size_t>(y.numel()));
      run_matmul<C>(*plan, ac.data(), bc.data(), yc.data(), ctx.gemm_engine());
      T* py = y.mutable_data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) py[i] = static_cast<T>(yc[i]);
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

template <class C>
void run_gemm(KernelContext& ctx, const C* a, const C* b, const C* c, C* y) {
  const Tensor &ta = ctx.input(0), &tb = ctx.input(1);
  const bool trans_a = ctx.node().attr_int("transA", 0), trans_b = ctx.node().attr_int("transB", 0);
  const C alpha = C(ctx.node().attr_float("alpha", 1.0f)), beta = C(ctx.node().attr_float("beta", 1.0f));
  const int64_t m = trans_a ? ta.dim(1) : ta.dim(0), k = trans_a ? ta.dim(0) : ta.dim(1);
  const int64_t n = trans_b ? tb.dim(0) : tb.dim(1);
  const bool use_c = c != nullptr && beta != C(0);
  if (use_c) {
    const Tensor& tc = ctx.input(2);
    for_each_broadcast<1>({m, n}, {tc.dims()}, [&](int64_t i, const std::array<int64_t, 1>& o) {
      y[i] = beta * c[o[0]];
    });
  }
  gemm<C>(trans_a, trans_b, m, n, k, alpha, a, ta.dim(1), b, tb.dim(1), use_c ? C(1) : C(0), y, n, ctx.gemm_engine());
}

Status gemm_kernel(KernelContext& ctx) {
  const Tensor &a = ctx.input(0), &b = ctx.input(1);
  const Tensor* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  Tensor& y = ctx.output(0);
  if (c && !broadcast_dims({c->dims(), y.dims()}).is_ok())
    return ctx.fail("C ", c->describe(), " does not broadcast to ", y.describe());
  Status st = visit_dtype(a.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    if constexpr (std::is_same_v<T, C>) {
      run_gemm<T>(ctx, a.data<T>(), b.data<T>(), c ? c->data<T>() : nullptr, y.mutable_data<T>());
    } else {
      auto ac = to_compute<C>(a.data<T>(), a.numel()), bc = to_compute<C>(b.data<T>(), b.numel());
      std::vector<C> cc = c ? to_compute<C>(c->data<T>(), c->numel()) : std::vector<C>();
      std::vector<C> yc(static_cast<size_t>(y.numel()));
      run_gemm<C>(ctx, ac.data(), bc.data(), c ? cc.data() : nullptr, yc.data());
      T* py = y.mutable_data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) py[i] = static_cast<T>(yc[i]);
    }
  });
  return st.is_ok() ? st : ctx.fail(st.message());
}

// Zero point of element i of an operand: per tensor (1 value) or per row/column, where
// `group(i)` maps the element to its row/column number.
template <class F>
std::vector<double> minus_zero_point(const Tensor& x, const Tensor* zp, F group) {
  std::vector<double> out(static_cast<size_t>(x.numel()));
  const int64_t nz = zp ? zp->numel() : 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    double z = nz ? zp->get_as_double(nz == 1 ? 0 : group(i) % nz) : 0.0;
    out[i] = x.get_as_double(i) - z;
  }
  return out;
}

// (a - a_zp) x (b - b_zp) in double; a_zp per row of A, b_zp per column of B.
Expected<std::vector<double>> integer_product(const Tensor& a, const Tensor* azp, const Tensor& b, const Tensor* bzp,
                                              MatMulPlan& plan) {
  KILN_ASSIGN_OR_RETURN(plan, plan_matmul(a.dims(), b.dims()));
  const int64_t k = plan.k, n = plan.n;
  auto ad = minus_zero_point(a, azp, [&](int64_t i) { return i / k; });
  auto bd = minus_zero_point(b, bzp, [&](int64_t i) { return (i / (k * n)) * n + i % n; });
  std::vector<double> y(static_cast<size_t>(prod(plan.batch) * plan.m * plan.n));
  run_matmul<double>(plan, ad.data(), bd.data(), y.data());
  return y;
}

Status matmul_integer(KernelContext& ctx) {
  MatMulPlan plan;
  auto y = integer_product(ctx.input(0), ctx.has_input(2) ? &ctx.input(2) : nullptr, ctx.input(1),
                           ctx.has_input(3) ? &ctx.input(3) : nullptr, plan);
  if (!y) return ctx.fail(y.status().message());
  int32_t* py = ctx.output(0).mutable_data<int32_t>();
  for (size_t i = 0; i < y->size(); ++i) py[i] = static_cast<int32_t>((*y)[i]);
  return Status::ok();
}

template <class T>
T saturate_round(double v) {
  v = std::nearbyint(v);
  if (std::isnan(v)) v = 0;  // casting NaN to an integer is undefined
  v = std::min<double>(std::max<double>(v, std::numeric_limits<T>::min()), std::numeric_limits<T>::max());
  return static_cast<T>(v);
}

Status qlinear_matmul(KernelContext& ctx) {
  MatMulPlan plan;
  auto y = integer_product(ctx.input(0), &ctx.input(2), ctx.input(3), &ctx.input(5), plan);
  if (!y) return ctx.fail(y.status().message());
  const Tensor &sa = ctx.input(1), &sb = ctx.input(4);
  for (size_t i : {1, 2, 4, 5, 6, 7})
    if (ctx.input(i).numel() < 1) return ctx.fail("scale/zero point input ", i, " is empty");
  const double sy = ctx.input(6).get_as_double(0), zy = ctx.input(7).get_as_double(0);
  if (sy == 0) return ctx.fail("y_scale is zero");
  Tensor& out = ctx.output(0);
  const int64_t m = plan.m, n = plan.n;
  return visit_dtype(out.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T>) {
      T* py = out.mutable_data<T>();
      for (size_t i = 0; i < y->size(); ++i) {
        int64_t row = int64_t(i) / n, col = int64_t(i) % n;
        // The combined multiplier in float, as runtimes compute it.
        float s = float(sa.get_as_double(sa.numel() == 1 ? 0 : (row % m) % sa.numel())) *
                  float(sb.get_as_double(sb.numel() == 1 ? 0 : col % sb.numel())) / float(sy);
        py[i] = saturate_round<T>(double(float((*y)[i]) * s) + zy);
      }
    }
  });
}

}  // namespace

void register_matmul_kernels(KernelTable& t) {
  t.add("", "MatMul", matmul);
  t.add("", "Gemm", gemm_kernel);
  t.add("", "MatMulInteger", matmul_integer);
  t.add("", "QLinearMatMul", qlinear_matmul);
  register_einsum_kernels(t);
}

}  // namespace kiln::cpu
