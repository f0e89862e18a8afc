// CPU kernels of the shape family.
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_shape_kernels(KernelTable& t) { (void)t; }

}  // namespace kiln::cpu
