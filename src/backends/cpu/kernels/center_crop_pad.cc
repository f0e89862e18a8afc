// CPU kernel of CenterCropPad (shape family, opset 18). Per axis, the copied window starts at
// floor((in - out) / 2) in the input when cropping and at floor((out - in) / 2) in the output
// when padding (the odd pixel goes to the end), as the ONNX reference does.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

Status center_crop_pad(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const size_t rank = x.rank();
  if (y.rank() != rank) return ctx.fail("output rank ", y.rank(), " differs from input rank ", rank);
  // Per axis: the input start, output start and length of the copied window.
  std::vector<int64_t> in_start(rank), out_start(rank), len(rank);
  for (size_t d = 0; d < rank; ++d) {
    const int64_t a = x.dim(d), b = y.dim(d);
    len[d] = std::min(a, b);
    in_start[d] = a > b ? (a - b) / 2 : 0;
    out_start[d] = b > a ? (b - a) / 2 : 0;
  }
  int64_t count = 1;
  for (int64_t l : len) count *= l;
  const size_t es = dtype_size(x.dtype());
  const std::byte* px = x.raw();
  std::byte* py = y.mutable_raw();
  std::vector<int64_t> idx(rank, 0);
  for (int64_t e = 0; e < count; ++e) {
    int64_t rem = e, xo = 0, yo = 0;
    for (size_t d = rank; d-- > 0;) {
      idx[d] = rem % len[d];
      rem /= len[d];
    }
    for (size_t d = 0; d < rank; ++d) {
      xo = xo * x.dim(d) + in_start[d] + idx[d];
      yo = yo * y.dim(d) + out_start[d] + idx[d];
    }
    std::memcpy(py + size_t(yo) * es, px + size_t(xo) * es, es);
  }
  return Status::ok();
}

}  // namespace

void register_center_crop_pad_kernels(KernelTable& t) { t.add("", "CenterCropPad", center_crop_pad); }

}  // namespace kiln::cpu
