#include "backends/cpu/kernel_table.h"
namespace kiln::cpu { void register_control_flow_kernels(KernelTable&) {} }
