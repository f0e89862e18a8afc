// Which backends this build of kiln has, and what the builder and the runtime ask of one. Each
// backend implements BackendProvider beside its engine and adds itself with its
// register_<name>_backend(BackendRegistry&); engine/backend_list.cc calls those, a line each (no
// static initializers). The builder and the runtime find backends here by name or by asking each
// in turn, and never name one.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace kiln {

// The device an engine is built for, recorded in the engine file; loading compares it.
struct DeviceRecord {
  std::string name = "cpu";  // "cpu" or the GPU's name
  int cc_major = 0, cc_minor = 0;
  std::string libraries;     // versions of the libraries whose algorithms the tactic ids name
  std::string summary;       // for the build log, e.g. "CUDA on NVIDIA H100 (sm_90, cuDNN 91400, ...)"
  // The timing cache's device key: everything a measured time depends on beyond the layer (GPU
  // name and compute capability or CPU model, library versions, the backend's tactic set version).
  std::string tuning_key;
};

// The build options a backend's kernels see.
struct BackendOptions {
  uint64_t workspace_bytes = uint64_t(256) << 20;
  bool tf32 = true;
  int optimization_level = 3;  // 0..5: how many candidates a layer lists (5: every valid one)
};

// Tuning (src/tuning/tuner.h): one tactic that could run a layer, and the tactic source it comes
// from (a bit of kiln::TacticSource, so --tacticSources can leave it out).
struct TacticCandidate {
  std::string id;
  uint32_t source = 0;
};

// Times the tactics of one graph's layers at the opt shapes on the backend's device (made once
// per build, with the layers' operands in place).
class TacticTimer {
 public:
  virtual ~TacticTimer() = default;
  // The tactics that could run node i, in the backend's order of preference (the first is its
  // heuristic pick, and the tie-break order); empty where the layer has nothing to choose.
  virtual std::vector<TacticCandidate> candidates(size_t node) = 0;
  // One run of node i with `tactic`, in milliseconds (the tuner warms up and takes the median).
  virtual Expected<double> time_once(size_t node, const std::string& tactic) = 0;
};

class BackendProvider {
 public:
  virtual ~BackendProvider() = default;
  // Stable name, recorded in the engine file ("cpu", "cuda").
  virtual const char* name() const = 0;
  // An accelerator: --backend=auto builds for it when probe() finds its device usable.
  virtual bool accelerator() const = 0;
  // The device this backend would build for and run on here, or why it cannot.
  virtual Expected<DeviceRecord> probe() const = 0;
  // Whether an engine built for `built` runs on this machine; the error says why not and to rebuild.
  virtual Status check_device(const DeviceRecord& built) const = 0;
  // Build time: whether the backend has a kernel for the node (else the builder gives the layer to
  // the CPU as kHostFallbackTactic), with the reason when not.
  virtual Support supports(const Node& node) const = 0;
  // The passes' capability query: whether any kernel of this backend runs domain.op.
  virtual bool has_kernel(const std::string& domain, const std::string& op) const = 0;
  // Whether float16 convolutions should run channels-last (NHWC) for profiles whose largest opt
  // batch is `opt_batch` on this backend's device; each backend says where its answer comes from.
  virtual bool prefers_channels_last(int64_t opt_batch) const = 0;
  // Build time: the tactic id of each node of `g` (the backend's whole choice, algorithm included,
  // so that loading never re-decides), picked at `shapes` (the first profile's opt shapes). On
  // entry `tactics` holds kHostFallbackTactic for the layers the builder gave to the host and ""
  // for the others; the backend fills in the others.
  virtual Status select_tactics(const Graph& g, const ValueShapes& shapes, const BackendOptions& options,
                                const HostLayerFn& host, std::vector<std::string>& tactics) const = 0;
  // Load time: the engine for `g` with the recorded tactics (one per node). An id this build does
  // not know is an error that says to rebuild.
  virtual Expected<std::unique_ptr<BackendEngine>> create_engine(const Graph& g, const std::vector<std::string>& tactics,
                                                                 const BackendOptions& options,
                                                                 const HostLayerFn& host) const = 0;
  // When the builder times this backend's candidates: always (at levels 1..5); when asked (an
  // explicitly set level or a timing cache given: the CPU reference, whose default engines stay
  // deterministic, one tactic per layer whatever the machine's load); or only at an explicitly
  // set level (a backend whose timing has not been checked on its device).
  enum class Tuning { kAlways, kWhenAsked, kExplicitLevel };
  virtual Tuning tuning() const { return Tuning::kExplicitLevel; }
  // Build time, after select_tactics: a timer of the layers of `g` at `shapes`, or null where the
  // backend has nothing to tune. `tactics` holds select_tactics' picks.
  virtual Expected<std::unique_ptr<TacticTimer>> make_tactic_timer(const Graph& /*g*/, const ValueShapes& /*shapes*/,
                                                                   const BackendOptions& /*options*/,
                                                                   const HostLayerFn& /*host*/,
                                                                   const std::vector<std::string>& /*tactics*/) const {
    return std::unique_ptr<TacticTimer>();
  }
  // The kernel table, {domain, op, tactic (or tactic family)} per entry, for `kiln --list-kernels`.
  virtual std::vector<std::array<std::string, 3>> kernels() const = 0;
};

class BackendRegistry {
 public:
  // Every backend built in, in the order --backend=auto tries them (engine/backend_list.cc).
  static const BackendRegistry& global();
  void add(std::unique_ptr<BackendProvider> p) { providers_.push_back(std::move(p)); }
  const BackendProvider* find(const std::string& name) const {
    for (const auto& p : providers_)
      if (name == p->name()) return p.get();
    return nullptr;
  }
  const std::vector<std::unique_ptr<BackendProvider>>& all() const { return providers_; }

 private:
  std::vector<std::unique_ptr<BackendProvider>> providers_;
};

}  // namespace kiln
