// Op schemas of the activation family.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_activation_ops(OpRegistry& r) { (void)r; }

}  // namespace kiln
