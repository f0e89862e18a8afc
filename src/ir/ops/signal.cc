// Op schemas of the signal family (opset 17): DFT, STFT, the Hann/Hamming/Blackman windows
// and MelWeightMatrix. Complex tensors are real tensors with a trailing dim of 2.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

// The value of a scalar integer input if known; nullopt at import time.
Expected<std::optional<int64_t>> scalar_int(const InferContext& ctx, size_t i, const char* what) {
  const Tensor* t = ctx.input_value(i);
  if (!t) return std::optional<int64_t>();
  if (t->numel() != 1) return ctx.fail(what, " must hold one value, got ", t->describe());
  if (dtype_is_float(t->dtype())) return ctx.fail(what, " must be an integer, got ", t->describe());
  return std::optional<int64_t>(t->get_as_int64(0));
}

Expected<DataType> output_datatype(const InferContext& ctx) {
  auto code = ctx.node().attr_int("output_datatype", 1);
  if (!dtype_code_known(int32_t(code))) return ctx.fail("unknown output_datatype ", code);
  DataType t = DataType(int32_t(code));
  if (dtype_size(t) == 0 || t == DataType::kBool || t == DataType::kComplex64 || t == DataType::kComplex128)
    return ctx.fail("unsupported output_datatype ", dtype_name(t));
  return t;
}

Status infer_window(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kInt32, DataType::kInt64}));
  KILN_ASSIGN_OR_RETURN(DataType t, output_datatype(ctx));
  KILN_ASSIGN_OR_RETURN(auto size, scalar_int(ctx, 0, "size"));
  if (size && *size < 0) return ctx.fail("size must not be negative, got ", *size);
  ctx.set_output(0, t, Shape({size ? Dim(*size) : Dim::unknown()}));
  return Status::ok();
}

// DFT's axis: the `axis` attribute (default 1) before opset 20, then optional input 2 (default
// -2). Either way a negative axis counts from the end of the full shape, complex dim included.
Expected<std::optional<int64_t>> dft_axis(const InferContext& ctx, int64_t rank) {
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (ctx.opset() >= 20) {
    if (ctx.node().has_attr("axis")) return ctx.fail("attribute 'axis' is an input from opset 20");
    axis = -2;
    if (ctx.has_input(2)) {
      KILN_ASSIGN_OR_RETURN(auto a, scalar_int(ctx, 2, "axis"));
      if (!a) return std::optional<int64_t>();
      axis = *a;
    }
  }
  KILN_ASSIGN_OR_RETURN(int64_t norm, normalize_axis(ctx, axis, rank));
  if (norm == rank - 1) return ctx.fail("axis must not be the last (complex) dim");
  return std::optional<int64_t>(norm);
}

// Output: the transformed axis has dft_length entries (n/2 + 1 for a one-sided forward
// transform); a one-sided inverse (irfft) is real, so its last dim is 1.
Status infer_dft(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                              DataType::kBFloat16}));
  const Shape& x = ctx.input_shape(0);
  const bool onesided = ctx.node().attr_int("onesided", 0) != 0;
  const bool inverse = ctx.node().attr_int("inverse", 0) != 0;
  if (!x.rank_known()) { ctx.set_output(0, ctx.input_type(0), Shape::unknown_rank()); return Status::ok(); }
  if (x.rank() < 2) return ctx.fail("input must have rank >= 2, got ", x.to_string());
  if (x[x.rank() - 1].is_static() && x[x.rank() - 1].value() != 1 && x[x.rank() - 1].value() != 2)
    return ctx.fail("last dim must be 1 (real) or 2 (complex), got ", x.to_string());
  std::vector<Dim> dims = x.dims();
  dims.back() = Dim(onesided && inverse ? 1 : 2);
  KILN_ASSIGN_OR_RETURN(auto axis, dft_axis(ctx, int64_t(x.rank())));
  if (!axis) {  // axis known only at run time
    for (size_t d = 0; d + 1 < dims.size(); ++d) dims[d] = Dim::unknown();
    ctx.set_output(0, ctx.input_type(0), Shape(dims));
    return Status::ok();
  }
  const Dim len = dims[size_t(*axis)];
  Dim n = onesided && inverse ? (len.is_static() ? Dim(2 * (len.value() - 1)) : Dim::unknown()) : len;
  if (ctx.has_input(1)) {
    KILN_ASSIGN_OR_RETURN(auto l, scalar_int(ctx, 1, "dft_length"));
    n = l ? Dim(*l) : Dim::unknown();
    if (l && *l <= 0) return ctx.fail("dft_length must be positive, got ", *l);
  }
  if (n.is_static() && n.value() <= 0) return ctx.fail("the transform length must be positive");
  dims[size_t(*axis)] = onesided && !inverse ? (n.is_static() ? Dim(n.value() / 2 + 1) : Dim::unknown()) : n;
  ctx.set_output(0, ctx.input_type(0), Shape(dims));
  return Status::ok();
}

Status infer_stft(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                              DataType::kBFloat16}));
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known() && x.rank() != 3) return ctx.fail("signal must have rank 3, got ", x.to_string());
  KILN_ASSIGN_OR_RETURN(auto step, scalar_int(ctx, 1, "frame_step"));
  KILN_ASSIGN_OR_RETURN(auto flen, scalar_int(ctx, 3, "frame_length"));
  if (step && *step <= 0) return ctx.fail("frame_step must be positive, got ", *step);
  Dim frame = flen ? Dim(*flen) : Dim::unknown();
  const Shape& w = ctx.input_shape(2);
  if (ctx.has_input(2) && w.rank_known() && w.rank() != 1) return ctx.fail("window must have rank 1, got ", w.to_string());
  if (!ctx.has_input(3) && ctx.has_input(2) && w.rank_known() && w.rank() == 1) frame = w[0];
  if (!ctx.has_input(2) && !ctx.has_input(3)) return ctx.fail("one of window and frame_length must be given");
  if (frame.is_static() && frame.value() <= 0) return ctx.fail("frame length must be positive");
  const bool onesided = ctx.node().attr_int("onesided", 1) != 0;
  Dim bins = frame.is_static() ? Dim(onesided ? frame.value() / 2 + 1 : frame.value()) : Dim::unknown();
  Dim batch = x.rank_known() ? x[0] : Dim::unknown(), frames = Dim::unknown();
  if (x.rank_known() && x[1].is_static() && step && frame.is_static()) {
    if (x[1].value() < frame.value()) return ctx.fail("signal is shorter than one frame");
    frames = Dim((x[1].value() - frame.value()) / *step + 1);
  }
  ctx.set_output(0, ctx.input_type(0), Shape({batch, frames, bins, Dim(2)}));
  return Status::ok();
}

Status infer_mel(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DataType t, output_datatype(ctx));
  KILN_ASSIGN_OR_RETURN(auto bins, scalar_int(ctx, 0, "num_mel_bins"));
  KILN_ASSIGN_OR_RETURN(auto dft, scalar_int(ctx, 1, "dft_length"));
  if (bins && *bins <= 0) return ctx.fail("num_mel_bins must be positive, got ", *bins);
  if (dft && *dft <= 0) return ctx.fail("dft_length must be positive, got ", *dft);
  ctx.set_output(0, t, Shape({dft ? Dim(*dft / 2 + 1) : Dim::unknown(), bins ? Dim(*bins) : Dim::unknown()}));
  return Status::ok();
}

OpSchema schema(const char* name, int min_in, int max_in, InferFn infer) {
  return OpSchema::make(name, 17, min_in, max_in, std::move(infer));
}

}  // namespace

void register_signal_ops(OpRegistry& r) {
  r.add(schema("DFT", 1, 3, infer_dft));
  r.add(schema("STFT", 2, 4, infer_stft));
  for (const char* w : {"HannWindow", "HammingWindow", "BlackmanWindow"}) r.add(schema(w, 1, 1, infer_window));
  r.add(schema("MelWeightMatrix", 5, 5, infer_mel));
}

}  // namespace kiln
