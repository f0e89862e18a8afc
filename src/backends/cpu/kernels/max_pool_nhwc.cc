// CPU kernel of kiln.MaxPool {layout="NHWC"}: the reference MaxPool between NHWC <-> NCHW copies
// (a reference, not a fast path: the channels-last form exists for the CUDA backend).
#include "backends/cpu/kernel_table.h"
#include "ir/layout.h"

namespace kiln::cpu {

namespace {

Status max_pool_nhwc(KernelContext& ctx) {
  Node nchw = ctx.node();
  nchw.domain = "";
  nchw.attrs.erase("layout");
  KILN_ASSIGN_OR_RETURN(Tensor x, permute4(ctx.input(0), kToNCHW));
  const Tensor& y = ctx.output(0);
  if (y.rank() != 4) return ctx.fail("layout NHWC needs a rank-4 output, got ", y.describe());
  std::vector<Tensor> outs(1);
  KILN_ASSIGN_OR_RETURN(outs[0], Tensor::zeros(y.dtype(), {y.dim(0), y.dim(3), y.dim(1), y.dim(2)}));
  KernelContext cctx(nchw, {&x}, outs);
  KILN_RETURN_IF_ERROR(KernelTable::global().find("", "MaxPool")(cctx));
  KILN_ASSIGN_OR_RETURN(Tensor back, permute4(outs[0], kToNHWC));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

}  // namespace

void register_max_pool_nhwc_kernels(KernelTable& t) { t.add("kiln", "MaxPool", max_pool_nhwc); }

}  // namespace kiln::cpu
