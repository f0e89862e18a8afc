// The backends built into this kiln, a line each, in the order --backend=auto tries them: the
// accelerators first, the CPU reference last. The one #ifdef of backend selection: which
// backends CMake compiled in (KILN_WITH_CUDA: a CUDA toolkit was found).
#include "backends/cpu/cpu_engine.h"
#ifdef KILN_WITH_CUDA
#include "backends/cuda/cuda_engine.h"
#endif

namespace kiln {

const BackendRegistry& BackendRegistry::global() {
  static const BackendRegistry registry = [] {
    BackendRegistry r;
#ifdef KILN_WITH_CUDA
    cuda::register_cuda_backend(r);
#endif
    cpu::register_cpu_backend(r);
    return r;
  }();
  return registry;
}

}  // namespace kiln
