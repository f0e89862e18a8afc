// Op schemas of the pool family.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_pool_ops(OpRegistry& r) { (void)r; }

}  // namespace kiln
