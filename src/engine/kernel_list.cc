// listKernels(): the kernel tables of the backends built in, for `kiln --list-kernels`.
#include <algorithm>

#include "backends/registry.h"
#include "kiln/kernels.h"

namespace kiln {

std::vector<KernelInfo> listKernels() {
  std::vector<KernelInfo> out;
  for (const auto& b : BackendRegistry::global().all())
    for (const auto& [domain, op, tactic] : b->kernels()) out.push_back({b->name(), domain, op, tactic});
  std::stable_sort(out.begin(), out.end(), [](const KernelInfo& a, const KernelInfo& b) { return a.backend < b.backend; });
  return out;
}

}  // namespace kiln
