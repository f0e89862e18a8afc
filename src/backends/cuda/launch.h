// What a CUDA kernel sees when its layer runs. The engine has already fixed every shape on the
// host (ValueShapes), placed every tensor (weights, the activation arena, the caller's I/O
// buffers), and made the library handles; a kernel only launches work on `stream`.
//
// One function per op, one table line per op, in src/backends/cuda/kernels/<family>.cu|cc:
//   t.add({"", "Relu", "cuda.elementwise", relu, check_relu});
// A node whose check() says no (or that has no entry) runs on the CPU as a fallback layer,
// with the transfer shown in the layer information.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace kiln::cuda {

struct DeviceTensor {
  void* data = nullptr;  // null for an omitted optional input/output
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> dims;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
  size_t nbytes() const { return dtype_nbytes(dtype, numel()); }  // packed types: ceil
  template <class T> T* as() const { return static_cast<T*>(data); }
};

struct LaunchContext {
  explicit LaunchContext(const Node& n) : node(n) {}
  const Node& node;
  cudaStream_t stream = nullptr;
  std::vector<DeviceTensor> inputs;
  std::vector<const Tensor*> host_inputs;  // host copy of input i when known (weights, shape values)
  std::vector<DeviceTensor> outputs;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  cublasLtHandle_t cublaslt = nullptr;
  cudnnHandle_t cudnn = nullptr;
  bool tf32 = true;  // whether float32 math may use TF32 tensor cores

  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].data; }
  template <class... Args>
  Status fail(const Args&... args) const { return err(node.label(), ": ", args...); }
};

using CudaKernelFn = Status (*)(LaunchContext&);
// Decides at build time whether the kernel takes this node (shapes may still be symbolic).
using CudaCheckFn = Support (*)(const Node&);

struct CudaKernelEntry {
  std::string domain, op;
  std::string tactic;       // stable id recorded in the engine, e.g. "cuda.elementwise"
  CudaKernelFn run = nullptr;
  CudaCheckFn check = nullptr;  // null: takes every node of this op
  bool view = false;        // output 0 is input 0's bytes (Reshape, Squeeze...): no launch
};

class CudaKernelTable {
 public:
  static const CudaKernelTable& global();
  void add(CudaKernelEntry e) { entries_.push_back(std::move(e)); }
  // The first entry for the node's op whose check accepts it, or null (with why in `reason`).
  const CudaKernelEntry* choose(const Node& node, std::string* reason) const;
  const CudaKernelEntry* find(const std::string& domain, const std::string& op, const std::string& tactic) const;
  const std::vector<CudaKernelEntry>& entries() const { return entries_; }

 private:
  std::vector<CudaKernelEntry> entries_;
};

// One function per kernel family, in src/backends/cuda/kernels/.
void register_cuda_view_kernels(CudaKernelTable& t);
void register_cuda_elementwise_kernels(CudaKernelTable& t);
void register_cuda_reduce_kernels(CudaKernelTable& t);
void register_cuda_normalization_kernels(CudaKernelTable& t);
void register_cuda_matmul_kernels(CudaKernelTable& t);
void register_cuda_conv_kernels(CudaKernelTable& t);
void register_cuda_pool_kernels(CudaKernelTable& t);
void register_cuda_data_movement_kernels(CudaKernelTable& t);

// Elementwise helpers every family may use.
int64_t cuda_grid_for(int64_t n, int threads);
// Whether p may be read or written `bytes` at a time (vector loads: 16 for uint4).
inline bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace kiln::cuda
