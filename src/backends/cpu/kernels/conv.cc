// CPU kernels of the conv family.
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_conv_kernels(KernelTable& t) { (void)t; }

}  // namespace kiln::cpu
