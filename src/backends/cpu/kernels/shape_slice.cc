// CPU kernels of the shape family, part 2: Slice, Pad, Expand, Tile, DepthToSpace and
// SpaceToDepth. All but Pad are one strided copy (see shape_copy.h) with op-specific strides.
#include <cmath>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/shape_copy.h"
#include "ir/ops/shape_params.h"

namespace kiln::cpu {

namespace {

std::vector<const Tensor*> input_values(const KernelContext& ctx) {
  std::vector<const Tensor*> v;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) v.push_back(ctx.has_input(i) ? &ctx.input(i) : nullptr);
  return v;
}

Expected<IntList> ints_of(const KernelContext& ctx, size_t input, const char* attr) {
  auto v = read_ints(ctx.node(), input_values(ctx), input, attr);
  if (!v) return ctx.fail(v.status().message());
  return v;
}

Status slice(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const bool attrs = ctx.opset() < 10;
  KILN_ASSIGN_OR_RETURN(IntList starts, ints_of(ctx, 1, attrs ? "starts" : nullptr));
  KILN_ASSIGN_OR_RETURN(IntList ends, ints_of(ctx, 2, attrs ? "ends" : nullptr));
  KILN_ASSIGN_OR_RETURN(IntList axes, ints_of(ctx, 3, attrs ? "axes" : nullptr));
  KILN_ASSIGN_OR_RETURN(IntList steps, ints_of(ctx, 4, nullptr));
  auto r = resolve_slice(x.dims(), starts.values, ends.values, axes, steps);
  if (!r) return ctx.fail(r.status().message());
  std::vector<int64_t> in_strides = contiguous_strides(x.dims()), strides(x.rank());
  int64_t base = 0;
  for (size_t d = 0; d < x.rank(); ++d) {
    base += (*r)[d].start * in_strides[d];
    strides[d] = (*r)[d].step * in_strides[d];
  }
  if (y.numel() > 0) strided_copy(x.raw(), base, strides, y.mutable_raw(), y.dims(), dtype_size(x.dtype()));
  return Status::ok();
}

// Maps an output coordinate of Pad to an input one; -1 means "the constant".
int64_t pad_source(int64_t i, int64_t n, const std::string& mode) {
  if (i >= 0 && i < n) return i;
  if (mode == "edge") return i < 0 ? 0 : n - 1;
  if (mode == "reflect") {
    if (n == 1) return 0;
    const int64_t period = 2 * (n - 1);  // reflection without repeating the edge is periodic
    int64_t j = ((i % period) + period) % period;
    return j < n ? j : period - j;
  }
  if (mode == "wrap") return ((i % n) + n) % n;  // opset 19: the input repeats periodically
  return -1;
}

Status pad(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const std::string mode = ctx.node().attr_string("mode", "constant");
  const bool attrs = ctx.opset() < 11;
  KILN_ASSIGN_OR_RETURN(IntList pads, ints_of(ctx, 1, attrs ? (ctx.node().has_attr("paddings") ? "paddings" : "pads") : nullptr));
  KILN_ASSIGN_OR_RETURN(IntList axes, ints_of(ctx, 3, nullptr));
  const int64_t rank = static_cast<int64_t>(x.rank());
  auto full = full_pads(rank, pads.values, axes);
  if (!full) return ctx.fail(full.status().message());
  double value = ctx.node().attr_float("value", 0.0f);
  if (!attrs) value = ctx.has_input(2) && ctx.input(2).numel() > 0 ? ctx.input(2).get_as_double(0) : 0.0;
  if (mode != "constant" && x.numel() == 0 && y.numel() > 0)
    return ctx.fail("cannot ", mode, "-pad an empty input");
  return visit_dtype(x.dtype(), AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.mutable_data<T>();
    const T fill = static_cast<T>(static_cast<compute_t<T>>(value));
    std::vector<int64_t> idx(rank, 0), in_strides = contiguous_strides(x.dims());
    for (int64_t i = 0; i < y.numel(); ++i) {
      int64_t off = 0;
      for (int64_t d = 0; d < rank && off >= 0; ++d) {
        int64_t s = pad_source(idx[d] - (*full)[d], x.dim(d), mode);
        off = s < 0 ? -1 : off + s * in_strides[d];
      }
      py[i] = off < 0 ? fill : px[off];
      for (int64_t d = rank; d-- > 0;) {
        if (++idx[d] < y.dim(d)) break;
        idx[d] = 0;
      }
    }
  });
}

Status expand(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  strided_copy(x.raw(), 0, broadcast_strides(x.dims(), y.dims()), y.mutable_raw(), y.dims(), dtype_size(x.dtype()));
  return Status::ok();
}

// Tile's output, seen as [r0, d0, r1, d1, ...], reads the input with stride 0 on the r axes.
Status tile(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  std::vector<int64_t> in_strides = contiguous_strides(x.dims()), dims, strides;
  for (size_t d = 0; d < x.rank(); ++d) {
    dims.push_back(x.dim(d) ? y.dim(d) / x.dim(d) : 0);
    dims.push_back(x.dim(d));
    strides.push_back(0);
    strides.push_back(in_strides[d]);
  }
  if (y.numel() > 0) strided_copy(x.raw(), 0, strides, y.mutable_raw(), dims, dtype_size(x.dtype()));
  return Status::ok();
}

// DepthToSpace is reshape-transpose-reshape; the output, seen as [N, C', H, b, W, b], reads the
// input with these strides (DCR: channel = (b1 * b + b2) * C' + c; CRD: c * b * b + b1 * b + b2).
Status depth_to_space(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t b = ctx.node().attr_int("blocksize", 1);
  const int64_t C = x.dim(1), H = x.dim(2), W = x.dim(3), Cq = C / (b * b), HW = H * W;
  const bool dcr = ctx.node().attr_string("mode", "DCR") == "DCR";
  const int64_t s_c = dcr ? HW : b * b * HW, s_b1 = dcr ? b * Cq * HW : b * HW, s_b2 = dcr ? Cq * HW : HW;
  std::vector<int64_t> dims{x.dim(0), Cq, H, b, W, b};
  std::vector<int64_t> strides{C * HW, s_c, W, s_b1, 1, s_b2};
  strided_copy(x.raw(), 0, strides, y.mutable_raw(), dims, dtype_size(x.dtype()));
  return Status::ok();
}

// SpaceToDepth: the output, seen as [N, b, b, C, H/b, W/b] (DCR) or [N, C, b, b, H/b, W/b]
// (CRD, opset 24's mode attribute), reads input (n, c, h*b + b1, w*b + b2).
Status space_to_depth(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t b = ctx.node().attr_int("blocksize", 1);
  const int64_t C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const bool crd = ctx.node().attr_string("mode", "DCR") == "CRD";
  std::vector<int64_t> dims{x.dim(0), b, b, C, H / b, W / b};
  std::vector<int64_t> strides{C * H * W, W, 1, H * W, b * W, b};
  if (crd) {
    dims = {x.dim(0), C, b, b, H / b, W / b};
    strides = {C * H * W, H * W, W, 1, b * W, b};
  }
  strided_copy(x.raw(), 0, strides, y.mutable_raw(), dims, dtype_size(x.dtype()));
  return Status::ok();
}

}  // namespace

void register_shape_slice_kernels(KernelTable& t) {
  t.add("", "Slice", slice);
  t.add("", "Pad", pad);
  t.add("", "Expand", expand);
  t.add("", "Tile", tile);
  t.add("", "DepthToSpace", depth_to_space);
  t.add("", "SpaceToDepth", space_to_depth);
}

}  // namespace kiln::cpu
