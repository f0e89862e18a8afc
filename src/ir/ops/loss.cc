// Op schemas of the loss family.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_loss_ops(OpRegistry& r) { (void)r; }

}  // namespace kiln
