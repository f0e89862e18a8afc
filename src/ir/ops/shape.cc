// Op schemas of the shape family.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_shape_ops(OpRegistry& r) { (void)r; }

}  // namespace kiln
