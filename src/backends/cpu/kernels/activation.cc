// CPU kernels of the activation family.
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_activation_kernels(KernelTable& t) { (void)t; }

}  // namespace kiln::cpu
