// The CUDA backend's registry entry: what the builder and the runtime ask of it (device, kernel
// support, the channels-last threshold, build-time tactic selection, engines).
#include "backends/cuda/cuda_engine.h"
#include "backends/cuda/cuda_status.h"
#include "backends/cuda/launch.h"
#include "core/log.h"

namespace kiln::cuda {

Expected<DeviceInfo> query_device(int ordinal) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return err("no usable CUDA device: ", cudaGetErrorString(e));
  }
  if (ordinal < 0 && count > 0) KILN_CUDA_CHECK(cudaGetDevice(&ordinal));
  if (ordinal < 0 || ordinal >= count) return err("CUDA device ", ordinal, " does not exist (", count, " found)");
  cudaDeviceProp p{};
  KILN_CUDA_CHECK(cudaGetDeviceProperties(&p, ordinal));
  DeviceInfo info;
  info.name = p.name;
  info.cc_major = p.major;
  info.cc_minor = p.minor;
  info.total_memory = p.totalGlobalMem;
  info.cudnn_version = static_cast<int>(cudnnGetVersion());
  info.cublaslt_version = static_cast<int>(cublasLtGetVersion());
  cudaRuntimeGetVersion(&info.runtime_version);
  if (info.cudnn_version < 9000)
    return err("cuDNN ", info.cudnn_version, " is too old: kiln's CUDA backend needs cuDNN 9");
  return info;
}

namespace {

std::string libraries(const DeviceInfo& d) {
  return "cuDNN " + std::to_string(d.cudnn_version) + ", cuBLASLt " + std::to_string(d.cublaslt_version);
}

// cuDNN's float16 tensor-core convolutions are NHWC-native (NCHW costs a transform each way),
// which pays off at large batches; at small batches the NCHW path measured faster. The batch from
// which channels-last wins is measured per GPU (whole-engine ResNet-50 latency, NCHW vs NHWC):
//   sm_90, H100: b1 0.60 vs 2.39 ms, b8 1.18 vs 2.51, b16 1.90 vs 5.13, b32 3.48 vs 3.46, b64 6.82 vs 2.23 -> 32
// A GPU without a measurement takes the value of the closest measured architecture below it (the
// build log says so); add a line here when another GPU is measured.
struct ChannelsLastThreshold {
  int cc;             // compute capability, major * 10 + minor
  int64_t min_batch;  // channels-last from this opt batch on
};
constexpr ChannelsLastThreshold kMeasured[] = {{90, 32}};

int64_t channels_last_min_batch(const DeviceInfo& d) {
  const int cc = d.cc_major * 10 + d.cc_minor;
  const ChannelsLastThreshold* best = nullptr;
  for (const auto& m : kMeasured)
    if (m.cc == cc) return m.min_batch;
    else if (m.cc < cc && (!best || m.cc > best->cc)) best = &m;
  if (!best) best = &kMeasured[0];
  log_info("the float16 channels-last batch threshold is not measured on " + d.name + " (sm_" + std::to_string(cc) +
           "): using sm_" + std::to_string(best->cc) + "'s, batch " + std::to_string(best->min_batch));
  return best->min_batch;
}

class CudaProvider : public BackendProvider {
 public:
  const char* name() const override { return "cuda"; }
  bool accelerator() const override { return true; }

  Expected<DeviceRecord> probe() const override {
    KILN_ASSIGN_OR_RETURN(DeviceInfo d, query_device());
    DeviceRecord r;
    r.name = d.name;
    r.cc_major = d.cc_major;
    r.cc_minor = d.cc_minor;
    r.libraries = libraries(d);
    r.tuning_key = d.name + " (sm_" + std::to_string(d.cc_major) + std::to_string(d.cc_minor) + "); " + r.libraries +
                   "; CUDA runtime " + std::to_string(d.runtime_version) + "; kiln cuda tactics 1";
    r.summary = "CUDA on " + d.name + " (sm_" + std::to_string(d.cc_major) + std::to_string(d.cc_minor) + ", " + r.libraries + ")";
    return r;
  }

  Status check_device(const DeviceRecord& built) const override {
    auto dev = query_device();
    if (!dev) return err("engine was built for CUDA (", built.name, "), but ", dev.status().message());
    if (dev->cc_major != built.cc_major || dev->cc_minor != built.cc_minor || dev->name != built.name)
      return err("engine was built for ", built.name, " (sm_", built.cc_major, built.cc_minor, "); this GPU is ", dev->name,
                 " (sm_", dev->cc_major, dev->cc_minor, "): rebuild the engine on this machine");
    // The tactic ids name cuDNN and cuBLASLt algorithms picked with these versions; another
    // version may not have them (or number them otherwise).
    if (built.libraries != libraries(*dev))
      return err("engine was built with ", built.libraries, "; this machine has ", libraries(*dev),
                 ": its recorded algorithms may not exist here; rebuild the engine on this machine");
    return Status::ok();
  }

  Support supports(const Node& node) const override {
    std::string why;
    return CudaKernelTable::global().choose(node, &why) ? Support::yes() : Support::no(why);
  }

  bool has_kernel(const std::string& domain, const std::string& op) const override {
    for (const auto& e : CudaKernelTable::global().entries())
      if (e.domain == domain && e.op == op) return true;
    return false;
  }

  bool prefers_channels_last(int64_t opt_batch) const override {
    auto dev = query_device();
    return dev && opt_batch >= channels_last_min_batch(*dev);
  }

  Status select_tactics(const Graph& g, const ValueShapes& shapes, const BackendOptions& o, const HostLayerFn& host,
                        std::vector<std::string>& tactics) const override {
    return cuda::select_tactics(g, shapes, {o.workspace_bytes, o.tf32, host}, tactics);
  }

  // Timing awaits its GPU check: tuning() stays kExplicitLevel (the builder times CUDA layers only
  // at an explicitly set --builderOptimizationLevel >= 1).
  Expected<std::unique_ptr<TacticTimer>> make_tactic_timer(const Graph& g, const ValueShapes& shapes, const BackendOptions& o,
                                                           const HostLayerFn& host,
                                                           const std::vector<std::string>& tactics) const override {
    return cuda::make_tactic_timer(g, shapes, {o.workspace_bytes, o.tf32, host}, tactics, o.optimization_level);
  }

  Expected<std::unique_ptr<BackendEngine>> create_engine(const Graph& g, const std::vector<std::string>& tactics,
                                                         const BackendOptions& o, const HostLayerFn& host) const override {
    return cuda::create_engine(g, tactics, {o.workspace_bytes, o.tf32, host});
  }

  std::vector<std::array<std::string, 3>> kernels() const override {
    std::vector<std::array<std::string, 3>> out;
    for (const auto& e : CudaKernelTable::global().entries())
      out.push_back({e.domain, e.op, e.selects ? e.tactic + ".<algorithm>" : e.tactic});
    return out;
  }
};

}  // namespace

void register_cuda_backend(BackendRegistry& r) { r.add(std::make_unique<CudaProvider>()); }

}  // namespace kiln::cuda
