// CUDA kernels of the data_movement family.
#include "backends/cuda/launch.h"

namespace kiln::cuda {

void register_cuda_data_movement_kernels(CudaKernelTable& t) { (void)t; }

}  // namespace kiln::cuda
