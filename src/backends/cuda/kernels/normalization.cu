// CUDA kernels of the normalization family.
#include "backends/cuda/launch.h"

namespace kiln::cuda {

void register_cuda_normalization_kernels(CudaKernelTable& t) { (void)t; }

}  // namespace kiln::cuda
