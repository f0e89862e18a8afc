// What a CUDA kernel sees when its layer runs. The engine has already fixed every shape on the
// host (ValueShapes), placed every tensor (weights, the activation arena, the caller's I/O
// buffers), and made the library handles; a kernel only launches work on `stream`.
//
// One function per op, one table line per op, in src/backends/cuda/kernels/<family>.cu|cc:
//   t.add({"", "Relu", "cuda.elementwise", relu, check_relu});
// A node whose check() says no (or that has no entry) runs on the CPU as a fallback layer,
// with the transfer shown in the layer information.
//
// Tuning (src/backends/cuda/cuda_tuning.cc, behind an explicit --builderOptimizationLevel): the
// builder may instead run a selecting layer with ctx.candidates set, and the kernel lists the ids
// that could run it (cuBLASLt's heuristic top-N, cuDNN's algorithms within the workspace); each is
// then run (ctx.tactic = the id) and timed with CUDA events, and the fastest recorded.
// Tactics that pick an algorithm (cuDNN's, cuBLASLt's, a tile rule) pick it at build time, on
// the build's GPU at the opt shapes: the builder runs such a layer once with ctx.selected set,
// and the kernel writes its full id there ("cuda.conv.cudnn.implicit_precomp_gemm.tensor_op").
// The engine records that id; at run time ctx.tactic holds it and the kernel runs that algorithm,
// never deciding again. Where the recorded algorithm cannot run at some other shape of the
// profile, the kernel picks again for that shape and says so in a warning (log_recorded_unusable).
// Descriptors ("plans") live in the layer's per-context state (ctx.state): made with the
// context's library handles, never shared between contexts, so no lock is held while launching.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <memory>
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

// A kernel's per-context state for one layer (its plans for the shapes seen). A context runs on
// one thread at a time, so nothing locks it.
struct LayerState {
  virtual ~LayerState() = default;
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
  std::string tactic;                            // the layer's tactic id, as recorded in the engine
  std::string* selected = nullptr;               // build time only: write the full tactic id here
  // Build time, tuning only (src/tuning; --builderOptimizationLevel >= 1 given explicitly, awaiting
  // its GPU check): a kernel that selects lists here the full ids of the algorithms that could run
  // this layer (heuristic order, at most max_candidates of a library's list) besides running it.
  std::vector<std::string>* candidates = nullptr;
  int max_candidates = 4;
  std::unique_ptr<LayerState>* state = nullptr;  // this context's state slot for the layer

  // The layer's state in this context, made on first use.
  template <class S> S& state_as() {
    if (!*state) *state = std::make_unique<S>();
    return static_cast<S&>(**state);
  }
  // The part of the tactic id after `family` + "." ("" when the id is the family alone).
  std::string tactic_rest(const std::string& family) const {
    return tactic.size() > family.size() + 1 && tactic.compare(0, family.size() + 1, family + ".") == 0
               ? tactic.substr(family.size() + 1)
               : std::string();
  }

  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].data; }
  // The host copy of input i (a weight or a host-evaluated value), or null.
  const Tensor* host_input(size_t i) const { return i < host_inputs.size() ? host_inputs[i] : nullptr; }
  template <class... Args>
  Status fail(const Args&... args) const { return err(node.label(), ": ", args...); }
};

using CudaKernelFn = Status (*)(LaunchContext&);
// Decides at build time whether the kernel takes this node (shapes may still be symbolic).
using CudaCheckFn = Support (*)(const Node&);

struct CudaKernelEntry {
  std::string domain, op;
  std::string tactic;       // stable id recorded in the engine, e.g. "cuda.elementwise"; with
                            // `selects`, the family every id of the kernel starts with ("cuda.conv")
  CudaKernelFn run = nullptr;
  CudaCheckFn check = nullptr;  // null: takes every node of this op
  bool view = false;        // output 0 is input 0's bytes (Reshape, Squeeze...): no launch
  bool selects = false;     // picks an algorithm at build time (writes ctx.selected when set)
};

// A warning (kernels call it when they make a plan for new shapes, so once per layer, context and
// shape): the recorded algorithm cannot run at these shapes, and what runs instead.
void log_recorded_unusable(const LaunchContext& ctx, const std::string& why, const std::string& instead);

class CudaKernelTable {
 public:
  static const CudaKernelTable& global();
  void add(CudaKernelEntry e) { entries_.push_back(std::move(e)); }
  // The first entry for the node's op whose check accepts it, or null (with why in `reason`).
  const CudaKernelEntry* choose(const Node& node, std::string* reason) const;
  // The entry that runs tactic id `tactic` (its id, or an id of its family when it selects).
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
void register_cuda_quantize_kernels(CudaKernelTable& t);  // QuantizeLinear, DequantizeLinear
void register_cuda_qlinear_conv_kernels(CudaKernelTable& t);    // QLinearConv, ConvInteger
void register_cuda_qlinear_matmul_kernels(CudaKernelTable& t);  // QLinearMatMul, MatMulInteger
void register_cuda_qlinear_elementwise_kernels(CudaKernelTable& t);  // com.microsoft QLinearAdd/Mul/Concat
// The integer kernels of those four files take layers only with KILN_CUDA_INT8=1 until their
// first GPU run has checked them against the CPU (tests/gpu/cuda_int8_test.cc sets it); without
// it those layers run on the CPU, as before, and check() says why (defined in kernel_table.cc).
Support cuda_int8_gate();

// Elementwise helpers every family may use.
int64_t cuda_grid_for(int64_t n, int threads);
// Copies host memory to the device and returns once every byte is there. (cudaMemcpy from
// pageable memory returns when the bytes are staged, before its DMA on the legacy stream lands,
// and work on a caller's non-blocking stream is not ordered after it: a kernel could read the
// old bytes.) For uploads outside any stream: weights, host-computed values, prepared operands;
// all of one call go through one private stream, waited for once.
struct HostUpload {
  void* dst;
  const void* src;
  size_t bytes;
};
Status upload_sync(const std::vector<HostUpload>& uploads);
// Whether p may be read or written `bytes` at a time (vector loads: 16 for uint4).
inline bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace kiln::cuda
