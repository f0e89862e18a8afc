// CPU kernels of the rnn family.
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

void register_rnn_kernels(KernelTable& t) { (void)t; }

}  // namespace kiln::cpu
