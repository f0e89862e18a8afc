// Op schemas of the conv family.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_conv_ops(OpRegistry& r) { (void)r; }

}  // namespace kiln
