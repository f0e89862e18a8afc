// CPU kernel of Col2Im (conv family, opset 18): the inverse of im2col. Each column entry
// (channel c, kernel offset k, block position l) is added into the image pixel that block l's
// window places kernel offset k on, as PyTorch's fold and the ONNX reference do.
#include <vector>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

// Multi-index of `flat` over `dims` (row-major).
void unflatten(int64_t flat, const std::vector<int64_t>& dims, std::vector<int64_t>& idx) {
  for (size_t d = dims.size(); d-- > 0;) {
    idx[d] = flat % dims[d];
    flat /= dims[d];
  }
}

Status col2im(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  auto image = ctx.input(1).to_int64_vector();
  auto block = ctx.input(2).to_int64_vector();
  if (!image || !block) return ctx.fail("image_shape and block_shape must be int64 lists");
  const size_t nd = image->size();
  const std::vector<int64_t> strides = ctx.node().attr_ints("strides", std::vector<int64_t>(nd, 1));
  const std::vector<int64_t> dil = ctx.node().attr_ints("dilations", std::vector<int64_t>(nd, 1));
  const std::vector<int64_t> pads = ctx.node().attr_ints("pads", std::vector<int64_t>(2 * nd, 0));
  if (strides.size() != nd || dil.size() != nd || pads.size() != 2 * nd)
    return ctx.fail("strides, dilations and pads must match image_shape's length ", nd);
  std::vector<int64_t> blocks(nd);
  int64_t n_blocks = 1, k_size = 1, img_size = 1;
  for (size_t d = 0; d < nd; ++d) {
    if (strides[d] < 1 || dil[d] < 1) return ctx.fail("strides and dilations must be positive");
    blocks[d] = ((*image)[d] + pads[d] + pads[d + nd] - (dil[d] * ((*block)[d] - 1) + 1)) / strides[d] + 1;
    if (blocks[d] < 1) return ctx.fail("no sliding block fits axis ", d);
    n_blocks *= blocks[d];
    k_size *= (*block)[d];
    img_size *= (*image)[d];
  }
  if (x.dim(2) != n_blocks) return ctx.fail("input has ", x.dim(2), " blocks, the geometry gives ", n_blocks);
  const int64_t N = x.dim(0), C = y.dim(1);
  std::vector<double> out(size_t(y.numel()), 0.0);
  std::vector<int64_t> k_idx(nd), b_idx(nd);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < k_size; ++k) {
        unflatten(k, *block, k_idx);
        for (int64_t l = 0; l < n_blocks; ++l) {
          unflatten(l, blocks, b_idx);
          int64_t off = 0;
          bool inside = true;
          for (size_t d = 0; d < nd && inside; ++d) {
            const int64_t p = b_idx[d] * strides[d] - pads[d] + k_idx[d] * dil[d];
            inside = p >= 0 && p < (*image)[d];
            off = off * (*image)[d] + p;
          }
          if (inside)
            out[size_t((n * C + c) * img_size + off)] += x.get_as_double(((n * C + c) * k_size + k) * n_blocks + l);
        }
      }
  return visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.mutable_data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) py[i] = static_cast<T>(static_cast<compute_t<T>>(out[size_t(i)]));
  });
}

}  // namespace

void register_col2im_kernels(KernelTable& t) { t.add("", "Col2Im", col2im); }

}  // namespace kiln::cpu
