// CPU kernels of the resize family.
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_resize_kernels(KernelTable& t) { (void)t; }

}  // namespace kiln::cpu
