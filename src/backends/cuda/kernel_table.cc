#include "backends/cuda/launch.h"

#include <cstdlib>
#include <cstring>

#include "backends/cuda/cuda_status.h"
#include "core/log.h"

namespace kiln::cuda {

void register_cuda_attention_kernels(CudaKernelTable& t);  // kernels/attention.cu

const CudaKernelTable& CudaKernelTable::global() {
  static const CudaKernelTable table = [] {
    CudaKernelTable t;
    register_cuda_view_kernels(t);
    register_cuda_elementwise_kernels(t);
    register_cuda_reduce_kernels(t);
    register_cuda_normalization_kernels(t);
    register_cuda_matmul_kernels(t);
    register_cuda_conv_kernels(t);
    register_cuda_pool_kernels(t);
    register_cuda_data_movement_kernels(t);
    register_cuda_attention_kernels(t);
    register_cuda_quantize_kernels(t);
    register_cuda_qlinear_conv_kernels(t);
    register_cuda_qlinear_matmul_kernels(t);
    register_cuda_qlinear_elementwise_kernels(t);
    return t;
  }();
  return table;
}

const CudaKernelEntry* CudaKernelTable::choose(const Node& node, std::string* reason) const {
  std::string d = node.domain == "ai.onnx" ? "" : node.domain;
  bool any = false;
  for (const auto& e : entries_) {
    if (e.domain != d || e.op != node.op_type) continue;
    any = true;
    Support s = e.check ? e.check(node) : Support::yes();
    if (s.ok) return &e;
    if (reason) *reason = s.reason;
  }
  if (!any && reason) *reason = "no CUDA kernel for " + node.op_type + " yet";
  return nullptr;
}

const CudaKernelEntry* CudaKernelTable::find(const std::string& domain, const std::string& op,
                                             const std::string& tactic) const {
  for (const auto& e : entries_) {
    if (e.domain != domain || e.op != op) continue;
    if (e.tactic == tactic) return &e;
    if (e.selects && tactic.size() > e.tactic.size() + 1 && tactic.compare(0, e.tactic.size() + 1, e.tactic + ".") == 0)
      return &e;
  }
  return nullptr;
}

void log_recorded_unusable(const LaunchContext& ctx, const std::string& why, const std::string& instead) {
  log_warning(ctx.node.label() + ": the recorded tactic " + ctx.tactic + " cannot run here (" + why + "); " + instead);
}

Status upload_sync(const std::vector<HostUpload>& uploads) {
  size_t total = 0;
  for (const HostUpload& u : uploads) total += u.bytes;
  if (!total) return Status::ok();
  cudaStream_t s = nullptr;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  Status st;
  for (const HostUpload& u : uploads)
    if (st && u.bytes) st = check(cudaMemcpyAsync(u.dst, u.src, u.bytes, cudaMemcpyHostToDevice, s), "upload to the device");
  const Status synced = check(cudaStreamSynchronize(s), "upload to the device");  // also after a failed copy
  cudaStreamDestroy(s);
  return st ? synced : st;
}

Support cuda_int8_gate() {
  const char* on = std::getenv("KILN_CUDA_INT8");
  if (on && std::strcmp(on, "1") == 0) return Support::yes();
  return Support::no("the CUDA integer kernels await their first GPU check (KILN_CUDA_INT8=1 enables them)");
}

int64_t cuda_grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return blocks < 1 ? 1 : (blocks > (1 << 30) ? (1 << 30) : blocks);
}

}  // namespace kiln::cuda
