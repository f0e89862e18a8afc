// CPU kernels of the detection family: NonMaxSuppression (greedy, per batch and class, as
// onnxruntime does it: scores must exceed score_threshold, a box is suppressed when its IoU
// with an already selected box exceeds iou_threshold).
#include <algorithm>
#include <array>
#include <vector>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

using Box = std::array<float, 4>;  // y1, x1, y2, x2 with y1 <= y2, x1 <= x2

Box corners(const float* b, bool center) {
  if (center) {  // [x_center, y_center, width, height]
    return {b[1] - b[3] / 2, b[0] - b[2] / 2, b[1] + b[3] / 2, b[0] + b[2] / 2};
  }
  return {std::min(b[0], b[2]), std::min(b[1], b[3]), std::max(b[0], b[2]), std::max(b[1], b[3])};
}

float iou(const Box& a, const Box& b) {
  float ih = std::min(a[2], b[2]) - std::max(a[0], b[0]);
  float iw = std::min(a[3], b[3]) - std::max(a[1], b[1]);
  if (ih <= 0 || iw <= 0) return 0;
  float inter = ih * iw;
  float uni = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return uni <= 0 ? 0 : inter / uni;
}

Status nms(KernelContext& ctx) {
  const Tensor& boxes = ctx.input(0);
  const Tensor& scores = ctx.input(1);
  const int64_t B = boxes.dim(0), S = boxes.dim(1), C = scores.dim(1);
  if (scores.dim(0) != B || scores.dim(2) != S)
    return ctx.fail("scores ", scores.describe(), " does not match boxes ", boxes.describe());
  int64_t max_out = ctx.has_input(2) && ctx.input(2).numel() > 0 ? ctx.input(2).get_as_int64(0) : 0;
  float iou_th = ctx.has_input(3) && ctx.input(3).numel() > 0 ? float(ctx.input(3).get_as_double(0)) : 0.f;
  bool has_score_th = ctx.has_input(4) && ctx.input(4).numel() > 0;
  float score_th = has_score_th ? float(ctx.input(4).get_as_double(0)) : 0.f;
  if (iou_th < 0 || iou_th > 1) return ctx.fail("iou_threshold ", iou_th, " must be in [0, 1]");
  const bool center = ctx.node().attr_int("center_point_box", 0) == 1;
  const float* pb = boxes.data<float>();
  const float* ps = scores.data<float>();
  std::vector<std::array<int64_t, 3>> selected;
  for (int64_t b = 0; b < B && max_out > 0; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const float* sc = ps + (b * C + c) * S;
      std::vector<int64_t> order;
      for (int64_t i = 0; i < S; ++i)
        if (!has_score_th || sc[i] > score_th) order.push_back(i);
      // Highest score first; equal scores keep the lower box index first.
      std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return sc[i] > sc[j]; });
      std::vector<Box> kept;
      for (int64_t i : order) {
        if (int64_t(kept.size()) >= max_out) break;
        Box bx = corners(pb + (b * S + i) * 4, center);
        bool keep = true;
        for (const Box& k : kept)
          if (iou(bx, k) > iou_th) { keep = false; break; }
        if (!keep) continue;
        kept.push_back(bx);
        selected.push_back({b, c, i});
      }
    }
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output(0, DataType::kInt64, {int64_t(selected.size()), 3}));
  int64_t* py = y->mutable_data<int64_t>();
  for (size_t i = 0; i < selected.size(); ++i)
    for (size_t k = 0; k < 3; ++k) py[i * 3 + k] = selected[i][k];
  return Status::ok();
}

}  // namespace

void register_detection_kernels(KernelTable& t) { t.add("", "NonMaxSuppression", nms); }

}  // namespace kiln::cpu
