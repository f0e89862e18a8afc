// CPU kernels of the pool family.
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_pool_kernels(KernelTable& t) { (void)t; }

}  // namespace kiln::cpu
