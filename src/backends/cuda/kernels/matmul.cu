// CUDA kernels of the matmul family.
#include "backends/cuda/launch.h"

namespace kiln::cuda {

void register_cuda_matmul_kernels(CudaKernelTable& t) { (void)t; }

}  // namespace kiln::cuda
