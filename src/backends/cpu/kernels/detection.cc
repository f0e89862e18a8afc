// CPU kernels of the detection family.
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_detection_kernels(KernelTable& t) { (void)t; }

}  // namespace kiln::cpu
