// CPU kernel of ONNX Runtime's QLinearConcat (com.microsoft), computed as ONNX Runtime computes
// it: an input with Y's scale and zero point is copied; any other goes through the requantization
// table of ir/ops/qlinear_concat.h, so a model ONNX Runtime runs gives the same bytes.
#include <cmath>
#include <cstring>

#include "backends/cpu/kernel_table.h"
#include "ir/ops/qlinear_concat.h"

namespace kiln::cpu {

namespace {

Status qlinear_concat(KernelContext& ctx) {
  const Node& node = ctx.node();
  const size_t n = node.inputs.size();
  const Tensor &ys_t = ctx.input(0), &yz_t = ctx.input(1);
  if (ys_t.numel() != 1 || yz_t.numel() != 1) return ctx.fail("Y_scale and Y_zero_point must be one value each");
  const float ys = float(ys_t.get_as_double(0));
  if (!(ys != 0) || !std::isfinite(ys)) return ctx.fail("Y_scale is ", ys);
  const int yz = int(yz_t.get_as_double(0));
  const bool s8 = yz_t.dtype() == DataType::kInt8;
  Tensor& y = ctx.output(0);
  const int64_t rank = int64_t(y.rank());
  int64_t axis = node.attr_int("axis", 0);
  if (axis < 0) axis += rank;
  int64_t outer = 1, inner = 1;  // inner: elements from the axis on, of the output
  for (int64_t d = 0; d < axis; ++d) outer *= y.dim(d);
  for (int64_t d = axis; d < rank; ++d) inner *= y.dim(d);
  uint8_t* out = reinterpret_cast<uint8_t*>(y.mutable_raw());
  int64_t offset = 0;  // where this input's block starts within each outer row
  for (size_t i = 2; i + 2 < n; i += 3) {
    const Tensor &x = ctx.input(i), &xs_t = ctx.input(i + 1);
    const Tensor* xz_t = ctx.has_input(i + 2) ? &ctx.input(i + 2) : nullptr;  // absent: 0
    if (xs_t.numel() != 1 || (xz_t && xz_t->numel() != 1))
      return ctx.fail("the scale and zero point of input ", i, " must be one value each");
    const float xs = float(xs_t.get_as_double(0));
    const int xz = xz_t ? int(xz_t->get_as_double(0)) : 0;
    const bool copy = xs == ys && xz == yz;
    std::array<uint8_t, 256> table{};
    if (!copy) table = s8 ? qlinear_concat_table<int8_t>(xs, xz, ys, yz) : qlinear_concat_table<uint8_t>(xs, xz, ys, yz);
    const int64_t block = outer ? x.numel() / outer : 0;  // this input's elements per outer row
    const uint8_t* in = reinterpret_cast<const uint8_t*>(x.raw());
    for (int64_t o = 0; o < outer; ++o) {
      uint8_t* dst = out + o * inner + offset;
      const uint8_t* src = in + o * block;
      if (copy) std::memcpy(dst, src, size_t(block));
      else for (int64_t e = 0; e < block; ++e) dst[e] = table[src[e]];
    }
    offset += block;
  }
  return Status::ok();
}

}  // namespace

void register_qlinear_concat_kernels(KernelTable& t) { t.add("com.microsoft", "QLinearConcat", qlinear_concat); }

}  // namespace kiln::cpu
