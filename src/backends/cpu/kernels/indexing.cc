// CPU kernels of the indexing family.
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_indexing_kernels(KernelTable& t) { (void)t; }

}  // namespace kiln::cpu
