// Op schemas of the signal family.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_signal_ops(OpRegistry& r) { (void)r; }

}  // namespace kiln
