// Sliding-window geometry shared by the conv and pool families (schemas and CPU kernels):
// reads kernel_shape/strides/dilations/pads/auto_pad and derives pads and output sizes,
// so Conv, ConvTranspose and every pooling op agree on one set of formulas.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

struct Window {
  size_t nd = 0;                    // spatial dims
  std::vector<int64_t> kernel;      // kernel extent per spatial dim
  std::vector<int64_t> strides, dilations;
  std::vector<int64_t> pads;        // begin pads [0, nd), end pads [nd, 2nd); may be negative for ConvTranspose
  std::vector<int64_t> in, out;     // spatial sizes; -1 = unknown (import time)
  std::vector<int64_t> output_padding;  // ConvTranspose only
};

namespace window_detail {
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

inline Status read_vec(const Node& n, const char* key, size_t len, int64_t def, std::vector<int64_t>& v) {
  v = n.attr_ints(key, std::vector<int64_t>(len, def));
  if (v.size() != len) return err(key, " has ", v.size(), " values, expected ", len);
  return Status::ok();
}

inline Status read_common(const Node& n, Window& w) {
  for (int64_t k : w.kernel) if (k < 1) return err("kernel_shape must be positive");
  KILN_RETURN_IF_ERROR(read_vec(n, "strides", w.nd, 1, w.strides));
  KILN_RETURN_IF_ERROR(read_vec(n, "dilations", w.nd, 1, w.dilations));
  KILN_RETURN_IF_ERROR(read_vec(n, "pads", 2 * w.nd, 0, w.pads));
  for (size_t i = 0; i < w.nd; ++i)
    if (w.strides[i] < 1 || w.dilations[i] < 1) return err("strides and dilations must be positive");
  for (int64_t p : w.pads) if (p < 0) return err("pads must be non-negative");
  std::string ap = n.attr_string("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "SAME_UPPER" && ap != "SAME_LOWER" && ap != "VALID")
    return err("unknown auto_pad '", ap, "'");
  return Status::ok();
}
}  // namespace window_detail

// Forward windows (Conv, pools). `in` are spatial input sizes (-1 unknown), `kernel` the extents.
inline Expected<Window> resolve_window(const Node& n, std::vector<int64_t> in, std::vector<int64_t> kernel,
                                       bool ceil_mode) {
  using namespace window_detail;
  Window w;
  w.nd = in.size();
  w.in = std::move(in);
  w.kernel = std::move(kernel);
  if (w.kernel.size() != w.nd) return err("kernel_shape has ", w.kernel.size(), " values, expected ", w.nd);
  KILN_RETURN_IF_ERROR(read_common(n, w));
  const std::string ap = n.attr_string("auto_pad", "NOTSET");
  w.out.assign(w.nd, -1);
  for (size_t i = 0; i < w.nd; ++i) {
    const int64_t ek = (w.kernel[i] - 1) * w.dilations[i] + 1, s = w.strides[i], x = w.in[i];
    if (ap == "VALID") { w.pads[i] = w.pads[i + w.nd] = 0; }
    if (x < 0) continue;
    if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      int64_t o = ceil_div(x, s);
      int64_t total = std::max<int64_t>(0, (o - 1) * s + ek - x);
      int64_t small = total / 2, big = total - small;
      w.pads[i] = ap == "SAME_UPPER" ? small : big;
      w.pads[i + w.nd] = ap == "SAME_UPPER" ? big : small;
      w.out[i] = o;
      continue;
    }
    int64_t span = x + w.pads[i] + w.pads[i + w.nd] - ek;
    if (span < 0) return err("window ", ek, " is larger than padded input ", x + w.pads[i] + w.pads[i + w.nd]);
    int64_t o = (ceil_mode ? ceil_div(span, s) : span / s) + 1;
    // Like PyTorch: with ceil_mode the last window must start inside the input or begin pad.
    if (ceil_mode && (o - 1) * s >= x + w.pads[i]) --o;
    w.out[i] = o;
  }
  return w;
}

// ConvTranspose windows: output = s*(in-1) + output_padding + ek - pads, or output_shape given.
inline Expected<Window> resolve_transpose_window(const Node& n, std::vector<int64_t> in, std::vector<int64_t> kernel) {
  using namespace window_detail;
  Window w;
  w.nd = in.size();
  w.in = std::move(in);
  w.kernel = std::move(kernel);
  if (w.kernel.size() != w.nd) return err("kernel_shape has ", w.kernel.size(), " values, expected ", w.nd);
  KILN_RETURN_IF_ERROR(read_common(n, w));
  KILN_RETURN_IF_ERROR(read_vec(n, "output_padding", w.nd, 0, w.output_padding));
  const std::string ap = n.attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> shape = n.attr_ints("output_shape");
  if (!shape.empty() && shape.size() != w.nd) {
    if (shape.size() == w.nd + 2) shape.erase(shape.begin(), shape.begin() + 2);
    else return err("output_shape has ", shape.size(), " values, expected ", w.nd);
  }
  w.out.assign(w.nd, -1);
  for (size_t i = 0; i < w.nd; ++i) {
    const int64_t ek = (w.kernel[i] - 1) * w.dilations[i] + 1, s = w.strides[i], x = w.in[i];
    if (ap == "VALID") w.pads[i] = w.pads[i + w.nd] = 0;
    if (x < 0) continue;
    const int64_t full = s * (x - 1) + w.output_padding[i] + ek;
    int64_t o = -1;
    if (!shape.empty()) o = shape[i];
    else if (ap == "SAME_UPPER" || ap == "SAME_LOWER") o = x * s;
    if (o >= 0) {
      // Floor division keeps a negative total (output larger than `full`) as extra trailing output.
      int64_t total = full - o;
      int64_t half = floor_div(total, 2);
      w.pads[i] = ap == "SAME_UPPER" ? half : total - half;
      w.pads[i + w.nd] = total - w.pads[i];
    } else {
      o = full - w.pads[i] - w.pads[i + w.nd];
    }
    if (o < 0) return err("output size ", o, " is negative");
    w.out[i] = o;
  }
  return w;
}

// kernel_shape attribute, else the weights' spatial dims (W is [M, C/group, *k]).
inline std::vector<int64_t> conv_kernel_shape(const Node& n, const std::vector<int64_t>& w_dims) {
  std::vector<int64_t> k = n.attr_ints("kernel_shape");
  if (k.empty() && w_dims.size() > 2) k.assign(w_dims.begin() + 2, w_dims.end());
  return k;
}

inline int64_t dims_product(const std::vector<int64_t>& d) {
  int64_t r = 1;
  for (int64_t x : d) r *= x;
  return r;
}

}  // namespace kiln
