// Op schemas of the resize family.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_resize_ops(OpRegistry& r) { (void)r; }

}  // namespace kiln
