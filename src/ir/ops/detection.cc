// Op schemas of the detection family.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_detection_ops(OpRegistry& r) { (void)r; }

}  // namespace kiln
