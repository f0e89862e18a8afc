#include "ir/ops/reduce_params.h"

namespace kiln {

int reduce_axes_input_since(const Node& n) { return n.op_type == "ReduceSum" ? 13 : 18; }

Expected<std::vector<bool>> reduce_axes_mask(const Node& n, const Tensor* axes_input, size_t rank, bool* noop) {
  std::vector<int64_t> axes;
  if (n.opset >= reduce_axes_input_since(n)) {
    if (axes_input) {
      auto v = axes_input->to_int64_vector();
      if (!v) return err(n.label(), ": axes: ", v.status().message());
      axes = *v;
    }
  } else {
    axes = n.attr_ints("axes");
  }
  *noop = axes.empty() && n.attr_int("noop_with_empty_axes", 0) != 0;
  std::vector<bool> mask(rank, axes.empty());
  const int64_t r = static_cast<int64_t>(rank);
  for (int64_t a : axes) {
    if (a < -r || a >= r) return err(n.label(), ": axis ", a, " is out of range for rank ", r);
    mask[static_cast<size_t>(a < 0 ? a + r : a)] = true;
  }
  return mask;
}

}  // namespace kiln
