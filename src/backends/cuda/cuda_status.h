// CUDA, cuBLASLt and cuDNN status codes as kiln errors naming what failed.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/status.h"

namespace kiln::cuda {

inline Status check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::ok();
  cudaGetLastError();  // clear the sticky-free error so the context stays usable
  if (e == cudaErrorMemoryAllocation) return err(what, ": out of GPU memory");
  return err(what, ": CUDA error ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

inline Status check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return err(what, ": cuBLASLt error ", static_cast<int>(s),
             s == CUBLAS_STATUS_NOT_SUPPORTED ? " (not supported)" : s == CUBLAS_STATUS_ALLOC_FAILED ? " (out of memory)" : "");
}

inline Status check(cudnnStatus_t s, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return Status::ok();
  return err(what, ": cuDNN error ", cudnnGetErrorString(s));
}

}  // namespace kiln::cuda

// Returns the error of a CUDA/cuBLASLt/cuDNN call, naming the call.
#define KILN_CUDA_CHECK(call) KILN_RETURN_IF_ERROR(::kiln::cuda::check((call), #call))
