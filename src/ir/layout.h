// Channels-last helpers shared by passes/convert_layout.cc (weights re-laid out at build time)
// and the CPU kernel of kiln.ConvAct {layout="NHWC"} (the reference runs NCHW between copies).
#pragma once
#include <array>
#include <cstring>

#include "ir/tensor.h"

namespace kiln {

// out[i0..i3] = t[index by perm]: out.dims[k] = t.dims[perm[k]] (ONNX Transpose semantics) for
// a rank-4 tensor of any whole-byte element type.
inline Expected<Tensor> permute4(const Tensor& t, const std::array<int, 4>& perm) {
  if (t.rank() != 4) return err("permute4: rank ", t.rank(), " is not 4");
  const auto& d = t.dims();
  std::vector<int64_t> od = {d[perm[0]], d[perm[1]], d[perm[2]], d[perm[3]]};
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::zeros(t.dtype(), od));
  const size_t es = t.numel() ? t.nbytes() / size_t(t.numel()) : 1;
  const int64_t st[4] = {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1};
  const int64_t s0 = st[perm[0]], s1 = st[perm[1]], s2 = st[perm[2]], s3 = st[perm[3]];
  const std::byte* src = t.raw();
  std::byte* dst = out.mutable_raw();
  for (int64_t a = 0; a < od[0]; ++a)
    for (int64_t b = 0; b < od[1]; ++b)
      for (int64_t c = 0; c < od[2]; ++c)
        for (int64_t e = 0; e < od[3]; ++e, dst += es)
          std::memcpy(dst, src + size_t(a * s0 + b * s1 + c * s2 + e * s3) * es, es);
  return out;
}

inline constexpr std::array<int, 4> kToNHWC = {0, 2, 3, 1};  // [N,C,H,W] -> [N,H,W,C]
inline constexpr std::array<int, 4> kToNCHW = {0, 3, 1, 2};  // [N,H,W,C] -> [N,C,H,W]

}  // namespace kiln
