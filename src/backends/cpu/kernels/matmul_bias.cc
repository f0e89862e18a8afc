// CPU kernel of kiln.MatMulBias: the reference MatMul kernel, then the bias, the activation
// (Gelu: the exact erf form, as the ONNX pattern it replaces computes it) and the residual.
#include <algorithm>
#include <cmath>

#include "backends/cpu/kernel_table.h"
#include "ir/activation.h"

namespace kiln::cpu {

namespace {

Status matmul_bias(KernelContext& ctx) {
  KernelFn mm = KernelTable::global().find("", "MatMul");
  std::vector<const Tensor*> ins = {&ctx.input(0), &ctx.input(1)};
  std::vector<Tensor> outs(1);
  outs[0] = ctx.output(0);  // shares the buffer: the MatMul writes straight into Y
  KernelContext mctx(ctx.node(), ins, outs);
  mctx.set_gemm_engine(ctx.gemm_engine());
  KILN_RETURN_IF_ERROR(mm(mctx));
  ctx.set_output(0, std::move(outs[0]));
  Tensor& y = ctx.output(0);
  const Tensor& bias = ctx.input(2);
  auto act = read_activation(ctx.node(), "activation", ActivationSlot::kMatMulBias);
  if (!act) return ctx.fail(act.status().message());
  const int64_t n = y.dims().empty() ? 1 : y.dims().back();
  if (bias.numel() != n) return ctx.fail("bias ", bias.describe(), " does not match output ", y.describe());
  const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (z && z->dims() != y.dims()) return ctx.fail("residual ", z->describe(), " does not match output ", y.describe());
  return visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* py = y.mutable_data<T>();
    const T* pb = bias.data<T>();
    const T* pz = z ? z->data<T>() : nullptr;
    for (int64_t i = 0; i < y.numel(); ++i) {
      C v = static_cast<C>(py[i]) + static_cast<C>(pb[i % n]);
      v = apply_activation(*act, v, 0, 0);
      py[i] = static_cast<T>(pz ? v + static_cast<C>(pz[i]) : v);
    }
  });
}

}  // namespace

void register_matmul_bias_kernels(KernelTable& t) { t.add("kiln", "MatMulBias", matmul_bias); }

}  // namespace kiln::cpu
