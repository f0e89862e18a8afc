// CUDA kernels of the pool family.
#include "backends/cuda/launch.h"

namespace kiln::cuda {

void register_cuda_pool_kernels(CudaKernelTable& t) { (void)t; }

}  // namespace kiln::cuda
