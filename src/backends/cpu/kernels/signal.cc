// CPU kernels of the signal family.
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_signal_kernels(KernelTable& t) { (void)t; }

}  // namespace kiln::cpu
