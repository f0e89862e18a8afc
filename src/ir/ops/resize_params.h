// Resize's output size and per-axis scales, shared by the schema (src/ir/ops/resize.cc) and the
// CPU kernel (src/backends/cpu/kernels/resize.cc): the executor preallocates the output from the
// schema's shape, so both must apply opset 18's `axes` and `keep_aspect_ratio_policy` alike.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace kiln {

struct ResizePlan {
  std::vector<double> scales;     // one per input axis, as the coordinate transform uses them
  std::vector<int64_t> out_dims;  // one per input axis
};

// Normalizes opset 18's `axes` attribute against `rank`; empty `axes` means every axis.
inline Expected<std::vector<int64_t>> resize_axes(std::vector<int64_t> axes, size_t rank) {
  if (axes.empty())
    for (size_t d = 0; d < rank; ++d) axes.push_back(int64_t(d));
  std::vector<bool> seen(rank, false);
  for (int64_t& a : axes) {
    if (a < 0) a += int64_t(rank);
    if (a < 0 || a >= int64_t(rank) || seen[size_t(a)])
      return Status::error("axes has an out-of-range or repeated axis");
    seen[size_t(a)] = true;
  }
  return axes;
}

// From the given `scales` or `sizes` (one value per entry of `axes`; exactly one of them
// non-empty) and static input dims. Follows the ONNX reference: scales give floor(dim * scale);
// sizes give scale = size / dim, and under not_larger / not_smaller one common scale (the min /
// max over `axes`) with sizes rounded half up.
inline Expected<ResizePlan> resize_plan(const std::vector<int64_t>& in, const std::vector<int64_t>& axes,
                                        const std::vector<double>& scales, const std::vector<int64_t>& sizes,
                                        const std::string& policy) {
  ResizePlan p{std::vector<double>(in.size(), 1.0), in};
  const bool by_scales = !scales.empty();
  const size_t n = by_scales ? scales.size() : sizes.size();
  if (n != axes.size())
    return Status::error(std::string(by_scales ? "scales" : "sizes") + " has " + std::to_string(n) +
                         " values for " + std::to_string(axes.size()) + " resized axes (input rank " +
                         std::to_string(in.size()) + ")");
  if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller")
    return Status::error("unknown keep_aspect_ratio_policy '" + policy + "'");
  for (size_t i = 0; i < n; ++i) {
    const size_t d = size_t(axes[i]);
    if (by_scales) {
      if (!(scales[i] > 0) || !(scales[i] < 1e12))
        return Status::error("scales[" + std::to_string(i) + "] must be positive and finite");
      p.scales[d] = scales[i];
      double v = std::floor(scales[i] * double(in[d]));
      if (v > 4e18) return Status::error("output dim " + std::to_string(d) + " overflows");
      p.out_dims[d] = int64_t(v);
    } else {
      if (sizes[i] < 0) return Status::error("sizes has a negative value " + std::to_string(sizes[i]));
      p.out_dims[d] = sizes[i];
      p.scales[d] = in[d] == 0 ? 1.0 : double(sizes[i]) / double(in[d]);
    }
  }
  if (by_scales || policy == "stretch" || n == 0) return p;
  double s = p.scales[size_t(axes[0])];
  for (int64_t a : axes) s = policy == "not_larger" ? std::min(s, p.scales[size_t(a)]) : std::max(s, p.scales[size_t(a)]);
  for (int64_t a : axes) {
    p.scales[size_t(a)] = s;
    p.out_dims[size_t(a)] = int64_t(s * double(in[size_t(a)]) + 0.5);
  }
  return p;
}

}  // namespace kiln
