// Op schemas of the rnn family.
#include "ir/ops/shape_rules.h"

namespace kiln {

void register_rnn_ops(OpRegistry& r) { (void)r; }

}  // namespace kiln
