// CUDA kernels of the reduce family.
#include "backends/cuda/launch.h"

namespace kiln::cuda {

void register_cuda_reduce_kernels(CudaKernelTable& t) { (void)t; }

}  // namespace kiln::cuda
