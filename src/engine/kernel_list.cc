// listKernels(): the kernel tables of the backends built in, for `kiln --list-kernels`.
#include "backends/cpu/kernel_table.h"
#include "kiln/kernels.h"
#ifdef KILN_WITH_CUDA
#include "backends/cuda/launch.h"
#endif

namespace kiln {

std::vector<KernelInfo> listKernels() {
  std::vector<KernelInfo> out;
  for (const auto& [domain, op] : cpu::KernelTable::global().list())
    out.push_back({"cpu", domain, op, "cpu.reference." + op});
#ifdef KILN_WITH_CUDA
  for (const auto& e : cuda::CudaKernelTable::global().entries()) out.push_back({"cuda", e.domain, e.op, e.tactic});
#endif
  return out;
}

}  // namespace kiln
