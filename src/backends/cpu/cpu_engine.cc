#include "backends/cpu/cpu_engine.h"

#include <cstring>

#include "backends/cpu/cpu_tactics.h"
#include "backends/cpu/executor.h"
#include "backends/cpu/kernel_table.h"
#include "backends/registry.h"

namespace kiln::cpu {

namespace {

class CpuContext : public BackendContext {
 public:
  CpuContext(const Graph& g, const Executor& ex) : graph_(g), executor_(ex) {}

  Status prepare(const ValueShapes& shapes) override {
    shapes_ = &shapes;
    arena_ = 0;
    for (const auto& [v, d] : shapes.dims) {
      if (v->initializer) continue;
      uint64_t n = 1;
      for (int64_t x : d) n *= static_cast<uint64_t>(x);
      arena_ += dtype_nbytes(v->dtype, static_cast<int64_t>(n));  // the reference executor frees as it goes; this is an upper bound
    }
    return Status::ok();
  }

  Status enqueue(const std::map<std::string, void*>& io, void* /*stream*/, LayerTimer* timer,
                 const OutputSink& sink) override {
    if (!shapes_) return err("the context has no input shapes yet");
    std::map<std::string, Tensor> feeds;
    for (const Value* in : graph_.inputs) {
      auto it = io.find(in->name);
      if (it == io.end() || !it->second) return err("input '", in->name, "' has no address (setTensorAddress)");
      const auto& dims = shapes_->dims.at(in);
      KILN_ASSIGN_OR_RETURN(int64_t n, checked_numel(dims, "input '" + in->name + "'"));
      // A non-owning view of the caller's buffer: inputs are never copied.
      std::shared_ptr<const std::byte> data(static_cast<const std::byte*>(it->second), [](const std::byte*) {});
      KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::view(in->dtype, dims, data, dtype_nbytes(in->dtype, n)));
      feeds[in->name] = std::move(t);
    }
    Executor::NodeObserver observer;
    if (timer) observer = [timer](const Node& n, double ms) { timer->layer_time(n, static_cast<float>(ms)); };
    KILN_ASSIGN_OR_RETURN(auto outs, executor_.run(feeds, observer));
    for (size_t k = 0; k < outs.size(); ++k) {
      const Value* out = graph_.outputs[k];
      // The shape the caller was told: evaluated, else the model's declared static shape.
      auto it = shapes_->dims.find(out);
      std::vector<int64_t> told = it != shapes_->dims.end() ? it->second
                                  : out->shape.is_static() ? out->shape.static_dims() : std::vector<int64_t>{-1};
      auto addr = io.find(out->name);
      void* dst = addr == io.end() ? nullptr : addr->second;
      if (told != outs[k].dims() || !dst) {
        if (!sink) return err("output '", out->name, "' came out as ", outs[k].describe(), ", not its reported shape");
        KILN_ASSIGN_OR_RETURN(dst, sink(*out, outs[k].dims(), outs[k].nbytes()));
      }
      if (outs[k].nbytes()) std::memcpy(dst, outs[k].raw(), outs[k].nbytes());
    }
    return Status::ok();
  }

  uint64_t arena_bytes() const override { return arena_; }

 private:
  const Graph& graph_;
  const Executor& executor_;
  const ValueShapes* shapes_ = nullptr;
  uint64_t arena_ = 0;
};

class CpuEngine : public BackendEngine {
 public:
  CpuEngine(const Graph& g, std::unique_ptr<Executor> ex) : graph_(g), executor_(std::move(ex)) {}
  Expected<std::unique_ptr<BackendContext>> create_context() override {
    return std::unique_ptr<BackendContext>(new CpuContext(graph_, *executor_));
  }

 private:
  const Graph& graph_;
  std::unique_ptr<Executor> executor_;
};

}  // namespace

Expected<std::unique_ptr<BackendEngine>> create_cpu_engine(const Graph& graph, const std::vector<std::string>& tactics) {
  std::vector<GemmEngine> gemm;
  if (!tactics.empty()) {
    if (tactics.size() != graph.nodes().size())
      return err("engine has ", tactics.size(), " tactics for ", graph.nodes().size(), " layers");
    for (size_t i = 0; i < tactics.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(GemmEngine e, gemm_engine_of(*graph.nodes()[i], tactics[i]));
      gemm.push_back(e);
    }
  }
  KILN_ASSIGN_OR_RETURN(auto ex, Executor::create(graph, std::move(gemm)));
  return std::unique_ptr<BackendEngine>(new CpuEngine(graph, std::move(ex)));
}

namespace {

// The reference backend: every layer on the host, tactic "cpu.reference.<op>" (one kernel per op;
// the GEMM-based layers may run it with kiln's own GEMM loops: cpu_tactics.h).
class CpuProvider : public BackendProvider {
 public:
  const char* name() const override { return "cpu"; }
  bool accelerator() const override { return false; }
  Expected<DeviceRecord> probe() const override {
    DeviceRecord d;
    d.summary = "the CPU reference backend";
    d.tuning_key = cpu_tuning_key();
    return d;
  }
  Status check_device(const DeviceRecord&) const override { return Status::ok(); }
  Support supports(const Node&) const override { return Support::yes(); }  // unsupported_ops() is the builder's check
  bool has_kernel(const std::string& domain, const std::string& op) const override {
    return KernelTable::global().find(domain, op) != nullptr;
  }
  bool prefers_channels_last(int64_t) const override { return false; }
  Status select_tactics(const Graph& g, const ValueShapes&, const BackendOptions&, const HostLayerFn&,
                        std::vector<std::string>& tactics) const override {
    for (size_t i = 0; i < g.nodes().size(); ++i) tactics[i] = reference_tactic(*g.nodes()[i]);
    return Status::ok();
  }
  Tuning tuning() const override { return Tuning::kWhenAsked; }
  Expected<std::unique_ptr<TacticTimer>> make_tactic_timer(const Graph& g, const ValueShapes& shapes, const BackendOptions& o,
                                                           const HostLayerFn&, const std::vector<std::string>&) const override {
    return make_cpu_tactic_timer(g, shapes, o.optimization_level);
  }
  Expected<std::unique_ptr<BackendEngine>> create_engine(const Graph& g, const std::vector<std::string>& tactics,
                                                         const BackendOptions&, const HostLayerFn&) const override {
    return create_cpu_engine(g, tactics);
  }
  std::vector<std::array<std::string, 3>> kernels() const override {
    std::vector<std::array<std::string, 3>> out;
    for (const auto& [domain, op] : KernelTable::global().list()) out.push_back({domain, op, "cpu.reference." + op});
    return out;
  }
};

}  // namespace

void register_cpu_backend(BackendRegistry& r) { r.add(std::make_unique<CpuProvider>()); }

}  // namespace kiln::cpu
