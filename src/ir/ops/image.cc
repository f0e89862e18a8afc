// Op schema of ImageDecoder (opset 20): a 1-D uint8 encoded stream (JPEG, PNG, BMP, PNM, TIFF,
// WebP, JPEG 2000) to an interleaved uint8 image [H, W, C], C = 3 for pixel_format RGB / BGR
// and 1 for Grayscale. H and W depend on the data, so the kernel allocates the output.
#include "ir/ops/shape_rules.h"

namespace kiln {

namespace {

Status infer_image_decoder(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(require_type(ctx, 0, {DataType::kUInt8}));
  const Shape& s = ctx.input_shape(0);
  if (s.rank_known() && s.rank() != 1) return ctx.fail("encoded_stream must be 1-D, got ", s.to_string());
  const std::string fmt = ctx.node().attr_string("pixel_format", "RGB");
  if (fmt != "RGB" && fmt != "BGR" && fmt != "Grayscale")
    return ctx.fail("pixel_format must be RGB, BGR or Grayscale, got '", fmt, "'");
  ctx.set_output(0, DataType::kUInt8, Shape({Dim::unknown(), Dim::unknown(), Dim(fmt == "Grayscale" ? 1 : 3)}));
  return Status::ok();
}

}  // namespace

void register_image_ops(OpRegistry& r) { r.add(OpSchema::make("ImageDecoder", 20, 1, 1, infer_image_decoder)); }

}  // namespace kiln
