// CPU kernel of kiln.ConvAct: the reference Conv kernel, then the residual and the activation.
// layout="NHWC": X, W and Z are copied to NCHW, the NCHW kernel runs, Y is copied back (a
// reference, not a fast path: the channels-last form exists for the CUDA backend); a tap-major
// weight (weight_layout="HWCM") is copied back to [M,C/g,kH,kW]. input_activation is applied
// to a copy of X before the convolution (its zero padding pads the activated tensor).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "backends/cpu/kernel_table.h"
#include "ir/activation.h"
#include "ir/layout.h"

namespace kiln::cpu {

namespace {

Status conv_act(KernelContext& ctx);

Status conv_act_nhwc(KernelContext& ctx) {
  Node nchw = ctx.node();
  nchw.attrs.erase("layout");
  nchw.attrs.erase("weight_layout");
  const bool hwcm = ctx.node().attr_string("weight_layout", "MHWC") == "HWCM";
  static constexpr std::array<int, 4> kHwcmToMchw = {3, 2, 0, 1};  // [kH,kW,C/g,M] -> [M,C/g,kH,kW]
  std::vector<Tensor> held;
  held.reserve(4);
  std::vector<const Tensor*> ins;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) { ins.push_back(nullptr); continue; }
    if (i == 2) { ins.push_back(&ctx.input(i)); continue; }  // the bias is 1-D
    KILN_ASSIGN_OR_RETURN(Tensor t, permute4(ctx.input(i), i == 1 && hwcm ? kHwcmToMchw : kToNCHW));
    held.push_back(std::move(t));
    ins.push_back(&held.back());
  }
  const Tensor& y = ctx.output(0);
  if (y.rank() != 4) return ctx.fail("layout NHWC needs a rank-4 output, got ", y.describe());
  std::vector<Tensor> outs(1);
  KILN_ASSIGN_OR_RETURN(outs[0], Tensor::zeros(y.dtype(), {y.dim(0), y.dim(3), y.dim(1), y.dim(2)}));
  KernelContext cctx(nchw, ins, outs);
  cctx.set_gemm_engine(ctx.gemm_engine());
  KILN_RETURN_IF_ERROR(conv_act(cctx));
  KILN_ASSIGN_OR_RETURN(Tensor back, permute4(outs[0], kToNHWC));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

// in_act(X) as a new tensor: input_activation "Clip" (in_act_min / in_act_max) or "Silu".
Expected<Tensor> input_activated(const KernelContext& ctx, Activation act) {
  const Tensor& x = ctx.input(0);
  const double lo = ctx.node().attr_float("in_act_min", -std::numeric_limits<float>::infinity());
  const double hi = ctx.node().attr_float("in_act_max", std::numeric_limits<float>::infinity());
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::zeros(x.dtype(), x.dims()));
  KILN_RETURN_IF_ERROR(visit_dtype(x.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.mutable_data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double v = double(static_cast<compute_t<T>>(px[i]));
      po[i] = static_cast<T>(static_cast<compute_t<T>>(apply_activation(act, v, lo, hi)));
    }
  }));
  return out;
}

Status conv_act(KernelContext& ctx) {
  if (ctx.node().attr_string("layout", "NCHW") == "NHWC") return conv_act_nhwc(ctx);
  KernelFn conv = KernelTable::global().find("", "Conv");
  std::vector<const Tensor*> ins;
  for (size_t i = 0; i < 3 && i < ctx.num_inputs(); ++i) ins.push_back(ctx.has_input(i) ? &ctx.input(i) : nullptr);
  auto in_act = read_activation(ctx.node(), "input_activation", ActivationSlot::kConvActInput);
  if (!in_act) return ctx.fail(in_act.status().message());
  Tensor xa;
  if (*in_act != Activation::kNone) {
    KILN_ASSIGN_OR_RETURN(xa, input_activated(ctx, *in_act));
    ins[0] = &xa;
  }
  std::vector<Tensor> outs(1);
  outs[0] = ctx.output(0);  // shares the buffer: the conv writes straight into Y
  KernelContext cctx(ctx.node(), ins, outs);
  cctx.set_gemm_engine(ctx.gemm_engine());
  KILN_RETURN_IF_ERROR(conv(cctx));
  ctx.set_output(0, std::move(outs[0]));  // the same buffer, unless the conv allocated its own
  Tensor& y = ctx.output(0);
  auto act = read_activation(ctx.node(), "activation", ActivationSlot::kConvAct);
  if (!act) return ctx.fail(act.status().message());
  const double lo = ctx.node().attr_float("act_min", -std::numeric_limits<float>::infinity());
  const double hi = ctx.node().attr_float("act_max", std::numeric_limits<float>::infinity());
  const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (z && z->dims() != y.dims()) return ctx.fail("residual ", z->describe(), " does not match output ", y.describe());
  return visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* py = y.mutable_data<T>();
    const T* pz = z ? z->data<T>() : nullptr;
    for (int64_t i = 0; i < y.numel(); ++i) {
      C v = static_cast<C>(py[i]) + (pz ? static_cast<C>(pz[i]) : C(0));
      py[i] = static_cast<T>(apply_activation(*act, v, lo, hi));
    }
  });
}

}  // namespace

void register_conv_act_kernels(KernelTable& t) { t.add("kiln", "ConvAct", conv_act); }

}  // namespace kiln::cpu
