// The public Builder: checks the profiles against the network's inputs, runs the optimization
// passes, picks a kernel (tactic) per layer on the chosen backend, measures the activation
// memory at the max profile shapes, and serializes the engine.
#include <algorithm>
#include <array>
#include <cmath>
#include <new>
#include <optional>
#include <set>

#include "backends/cpu/executor.h"
#include "backends/memory_plan.h"
#include "backends/registry.h"
#include "core/mapped_file.h"
#include "engine/api_logging.h"
#include "engine/engine_file.h"
#include "engine/host_layer.h"
#include "engine/layer_precisions.h"
#include "engine/shape_eval.h"
#include "ir/op_registry.h"
#include "kiln/builder.h"
#include "passes/pipeline.h"
#include "quant/accuracy_guard.h"
#include "quant/calibrate.h"
#include "quant/fake_quantize.h"
#include "tuning/tuning_step.h"

namespace kiln {

Network::Network() = default;
Network::~Network() = default;
int Network::getNbInputs() const { return graph_ ? static_cast<int>(graph_->inputs.size()) : 0; }
int Network::getNbOutputs() const { return graph_ ? static_cast<int>(graph_->outputs.size()) : 0; }
std::string Network::getInputName(int i) const { return graph_->inputs.at(i)->name; }
std::string Network::getOutputName(int i) const { return graph_->outputs.at(i)->name; }
TensorType Network::getInputType(int i) const { return static_cast<TensorType>(graph_->inputs.at(i)->dtype); }
int Network::getNbLayers() const { return graph_ ? static_cast<int>(graph_->nodes().size()) : 0; }
Dims Network::getInputDims(int i) const {
  Dims d;
  for (const Dim& x : graph_->inputs.at(i)->shape.dims()) d.push_back(x.is_static() ? x.value() : -1);
  return d;
}
Dims Network::getOutputDims(int i) const {
  Dims d;
  for (const Dim& x : graph_->outputs.at(i)->shape.dims()) d.push_back(x.is_static() ? x.value() : -1);
  return d;
}
TensorType Network::getOutputType(int i) const { return static_cast<TensorType>(graph_->outputs.at(i)->dtype); }

bool Network::setInputDims(int i, const Dims& dims, std::string* error) {
  auto fail = [&](const std::string& m) { if (error) *error = m; return false; };
  if (!graph_ || i < 0 || i >= getNbInputs()) return fail("the network has no input " + std::to_string(i));
  Value* in = graph_->inputs[i];
  const Shape old = in->shape;
  if (old.rank_known() && old.rank() != dims.size())
    return fail("input '" + in->name + "' has rank " + std::to_string(old.rank()) + " (" + old.to_string() +
                "), not " + std::to_string(dims.size()));
  Shape next = old.rank_known() ? old : Shape(std::vector<Dim>(dims.size()));
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] < -1) return fail("input '" + in->name + "': dim " + std::to_string(k) + " is " + std::to_string(dims[k]));
    if (dims[k] == -1) continue;
    if (old.rank_known() && old[k].is_static() && old[k].value() != dims[k])
      return fail("input '" + in->name + "': dim " + std::to_string(k) + " is fixed at " +
                  std::to_string(old[k].value()) + " by the model, not " + std::to_string(dims[k]));
    next[k] = Dim(dims[k]);
  }
  in->shape = next;
  if (Status s = infer_graph(*graph_); !s) {
    in->shape = old;
    (void)infer_graph(*graph_);
    return fail("input '" + in->name + "' as " + dimsToString(dims) + ": " + s.message());
  }
  return true;
}

bool OptimizationProfile::setDimensions(const std::string& input, OptProfileSelector which, const Dims& dims) {
  for (int64_t d : dims) if (d < 0) return false;
  shapes_[input][static_cast<int>(which)] = dims;
  return true;
}

Dims OptimizationProfile::getDimensions(const std::string& input, OptProfileSelector which) const {
  auto it = shapes_.find(input);
  return it == shapes_.end() ? Dims{} : it->second[static_cast<int>(which)];
}

bool OptimizationProfile::isValid() const {
  for (const auto& [name, s] : shapes_) {
    if (s[0].size() != s[1].size() || s[1].size() != s[2].size()) return false;
    for (size_t k = 0; k < s[0].size(); ++k)
      if (s[0][k] > s[1][k] || s[1][k] > s[2][k]) return false;
  }
  return true;
}

int BuilderConfig::addOptimizationProfile(const OptimizationProfile& p) {
  if (!p.isValid()) return -1;
  profiles_.push_back(p);
  return static_cast<int>(profiles_.size()) - 1;
}

std::unique_ptr<Network> Builder::createNetwork() { return std::unique_ptr<Network>(new Network()); }

namespace {

// The largest leading dim of a rank-4 input at any profile's opt shape (0 if none): the batch
// the engine is tuned for, as TensorRT picks tactics at the opt shape.
int64_t opt_batch(const std::vector<std::vector<engine::ProfileShapes>>& profiles) {
  int64_t b = 0;
  for (const auto& prof : profiles)
    for (const auto& s : prof)
      if (s.opt.size() == 4) b = std::max(b, s.opt[0]);
  return b;
}

// The profiles to record: the user's, checked against the network, or one made of the static
// input shapes when every input is static. A dynamic input without a range is an error.
Expected<std::vector<std::vector<engine::ProfileShapes>>> resolve_profiles(const Graph& g, const BuilderConfig& c) {
  std::vector<std::vector<engine::ProfileShapes>> out;
  if (c.profiles().empty()) {
    std::vector<engine::ProfileShapes> prof;
    for (const Value* in : g.inputs) {
      if (!in->shape.is_static())
        return err("input '", in->name, "' has dynamic shape ", in->shape.to_string(),
                   ": give its range with --minShapes/--optShapes/--maxShapes (or --shapes)");
      auto d = in->shape.static_dims();
      prof.push_back({in->name, d, d, d});
    }
    out.push_back(std::move(prof));
    return out;
  }
  for (size_t pi = 0; pi < c.profiles().size(); ++pi) {
    const auto& entries = c.profiles()[pi].entries();
    for (const auto& [name, s] : entries) {
      bool known = false;
      for (const Value* in : g.inputs) known = known || in->name == name;
      if (!known) return err("optimization profile ", pi, " names '", name, "', which is not an input of the network");
    }
    std::vector<engine::ProfileShapes> prof;
    for (const Value* in : g.inputs) {
      auto it = entries.find(in->name);
      if (it == entries.end()) {
        if (!in->shape.is_static())
          return err("input '", in->name, "' has dynamic shape ", in->shape.to_string(), " but optimization profile ",
                     pi, " gives no range for it");
        auto d = in->shape.static_dims();
        prof.push_back({in->name, d, d, d});
        continue;
      }
      const auto& s = it->second;
      for (int k = 0; k < 3; ++k) {
        const Dims& d = s[k];
        if (in->shape.rank_known() && d.size() != in->shape.rank())
          return err("profile ", pi, ": input '", in->name, "' has rank ", in->shape.rank(), " (",
                     in->shape.to_string(), ") but its ", k == 0 ? "min" : k == 1 ? "opt" : "max", " shape is ",
                     dimsToString(d));
        for (size_t j = 0; j < d.size() && in->shape.rank_known(); ++j)
          if (in->shape[j].is_static() && in->shape[j].value() != d[j])
            return err("profile ", pi, ": input '", in->name, "' dim ", j, " is fixed at ", in->shape[j].value(),
                       " but the profile gives ", d[j]);
      }
      prof.push_back({in->name, s[0], s[1], s[2]});
    }
    out.push_back(std::move(prof));
  }
  return out;
}

// The backend asked for, or (auto) the first accelerator in the registry whose device is usable,
// else the CPU reference backend. The device it builds for is recorded in the engine.
Expected<const BackendProvider*> pick_backend(const BuilderConfig& c, Logger& logger, engine::EngineModel& model,
                                              DeviceRecord& device) {
  const BackendRegistry& registry = BackendRegistry::global();
  auto use = [&](const BackendProvider* p, const DeviceRecord& d) {
    device = d;
    model.backend = p->name();
    model.device_name = d.name;
    model.cc_major = d.cc_major;
    model.cc_minor = d.cc_minor;
    model.device_libraries = d.libraries;
    logger.log(Logger::Severity::kINFO, ("building for " + d.summary).c_str());
    return p;
  };
  const BackendKind want = c.getBackend();
  if (want != BackendKind::kAUTO) {
    const std::string name = backendName(want);
    const BackendProvider* p = registry.find(name);
    if (!p) return err("the ", name, " backend is not available in this build of kiln (CMake found no toolkit for it)");
    auto dev = p->probe();
    if (!dev) return err("--backend=", name, ": ", dev.status().message());
    return use(p, *dev);
  }
  std::string why;
  for (const auto& p : registry.all()) {
    if (!p->accelerator()) continue;
    auto dev = p->probe();
    if (dev) return use(p.get(), *dev);
    why += std::string(why.empty() ? "" : "; ") + "no usable " + p->name() + " device (" + dev.status().message() + ")";
  }
  logger.log(Logger::Severity::kINFO, ((why.empty() ? std::string("this build of kiln has no accelerator backend") : why) +
                                       ": building for the CPU reference backend").c_str());
  const BackendProvider* cpu = registry.find(backendName(BackendKind::kCPU));
  if (!cpu) return err("this build of kiln has no CPU backend");
  model.backend = cpu->name();
  model.device_name = "cpu";
  if (auto d = cpu->probe()) device = *d;
  return cpu;
}

// One tactic per node. A layer the backend does not take goes to the CPU (kHostFallbackTactic,
// with the reason as a warning); the backend picks the others' tactics, algorithms included,
// at the first profile's opt shapes (the tuning step may then replace them by timing).
Status choose_tactics(const Graph& g, const BackendProvider& backend, const ValueShapes& opt,
                      const BackendOptions& options, Logger& logger, std::vector<std::string>& tactics) {
  tactics.assign(g.nodes().size(), "");
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& n = *g.nodes()[i];
    Support s = backend.supports(n);
    if (s.ok) continue;
    tactics[i] = kHostFallbackTactic;
    logger.log(Logger::Severity::kWARNING, (n.label() + " runs on the CPU (fallback): " + s.reason).c_str());
  }
  return backend.select_tactics(g, opt, options, engine::host_layer(), tactics);
}

// External data is mapped, not copied: a file truncated since the import would raise SIGBUS
// at the first read past its new end, and a file of another size is not what was imported.
Status check_mapped_files(const Graph& g) {
  for (const auto& f : g.mapped_files) {
    Status s = f->check_unchanged();
    if (!s) return err("external data file ", s.message(), "; parse the model again");
  }
  return Status::ok();
}

std::string fmt_error(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", x);
  return b;
}

// INT8 on the optimized graph: the scales into the engine; on the CPU backend, Conv/MatMul/Gemm
// simulate INT8 (quant/fake_quantize.h) except where a precision constraint keeps them in float;
// the output error is measured and, with a tolerance, the accuracy guard keeps the most
// sensitive layers in float (quant/accuracy_guard.h). `why_float`: layer -> why it stays float.
Expected<quant::Int8Layers> apply_int8(Graph& g, const BuilderConfig& c, const engine::LayerPrecisions& lp,
                                       const quant::CalibrationResult& int8, bool cpu,
                                       const std::vector<engine::ProfileShapes>& profile0,
                                       std::map<const Node*, std::string>& why_float, Logger& logger) {
  const bool obey = lp.mode() == engine::ConstraintMode::kObey;
  auto constrained = [&](const Node& n) {
    const DataType p = lp.of(n).precision;
    return p == DataType::kFloat32 || p == DataType::kFloat16;
  };
  KILN_ASSIGN_OR_RETURN(quant::Int8Layers q8, quant::apply_int8(g, int8.scales, cpu, constrained));
  std::set<const Node*> simulated;
  for (const auto& l : q8.simulated) simulated.insert(l.node);
  for (const auto& n : g.nodes()) {
    const engine::LayerConstraint k = lp.of(*n);
    if (k.precision == DataType::kInt8 && k.named && !simulated.count(n.get())) {
      const std::string why = !quant::is_quantizable_layer(*n) ? "kiln quantizes Conv, MatMul and Gemm layers only"
                              : !cpu ? std::string("this engine's backend has no INT8 kernels yet (only the CPU backend simulates INT8)")
                                     : "its input has no INT8 scale (calibration gave none)";
      if (obey) return err(n->label(), ": ", k.reason, " cannot be obeyed: ", why);
      logger.log(Logger::Severity::kWARNING, (n->label() + ": " + k.reason + " is preferred but not possible (" + why +
                                              "): the layer computes in float").c_str());
    }
    if (quant::is_quantizable_layer(*n) && !int8.scales.empty() &&
        (k.precision == DataType::kFloat32 || k.precision == DataType::kFloat16))
      why_float[n.get()] = k.reason;
  }
  const double tolerance = c.getInt8Tolerance();
  if (q8.simulated.empty()) {
    if (tolerance > 0)
      return err("--int8Tolerance: the accuracy guard measures the CPU backend's INT8 simulation, and this build ",
                 cpu ? "has no INT8 layer (no scales, or every quantizable layer is constrained to float)"
                     : "is for a backend without INT8 kernels (every layer computes in float): build with --backend=cpu");
    return q8;
  }
  std::vector<std::map<std::string, Tensor>> batches = int8.held;
  std::string on = std::to_string(batches.size()) + " calibration batches";
  if (batches.empty()) {
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& in : profile0) shapes[in.input] = in.opt;
    auto random = quant::random_guard_inputs(g, shapes, static_cast<int>(quant::kHeldBatches));
    if (!random) {
      if (tolerance > 0) return random.status();
      logger.log(Logger::Severity::kINFO, ("INT8 output error not measured: " + random.status().message()).c_str());
      return q8;
    }
    batches = std::move(*random);
    on = std::to_string(batches.size()) + " seeded standard-normal random inputs (no calibration batches: the scales "
         "came from a cache)";
  }
  auto pinned = [&](const Node& n) { const auto k = lp.of(n); return obey && k.named && k.precision == DataType::kInt8; };
  KILN_ASSIGN_OR_RETURN(quant::GuardReport report, quant::accuracy_guard(g, q8.simulated, batches, tolerance, pinned));
  std::string line = "INT8 output error (relative L2 against every layer in float, on " + on +
                     "): " + fmt_error(report.error_all) + " with all " + std::to_string(q8.simulated.size()) +
                     " simulated INT8 layers";
  if (tolerance > 0) {
    line += "; tolerance " + fmt_error(tolerance);
    if (report.kept.empty()) line += ": within it, no layer kept in float";
    else {
      line += ": the accuracy guard kept " + std::to_string(report.kept.size()) + " layers in float:";
      for (const auto& k : report.kept)
        line += "\n  " + k.layer + " (INT8 error at its output " + fmt_error(k.sensitivity) +
                (k.error_after >= 0 ? "; output error with it and those above in float: " + fmt_error(k.error_after) : "") +
                ")";
      line += "\nfinal INT8 output error " + fmt_error(report.error_final);
    }
  }
  logger.log(Logger::Severity::kINFO, line.c_str());
  if (tolerance > 0 && report.error_final > tolerance)
    logger.log(Logger::Severity::kWARNING, ("INT8 accuracy guard: the output error " + fmt_error(report.error_final) +
                                            " is still above the tolerance " + fmt_error(tolerance) +
                                            " with every movable layer in float").c_str());
  std::set<std::string> kept;
  for (const auto& k : report.kept) kept.insert(k.layer);
  std::vector<quant::QuantizedLayer> still;
  for (const auto& l : q8.simulated) {
    if (!kept.count(l.node->name)) { still.push_back(l); continue; }
    for (const auto& k : report.kept)
      if (k.layer == l.node->name)
        why_float[l.node] = "kept from INT8 by the accuracy guard: INT8 error at its output " +
                            fmt_error(k.sensitivity);
  }
  q8.simulated = std::move(still);
  quant::remove_unused_qdq(g);
  return q8;
}

engine::ConstraintMode constraint_mode(const BuilderConfig& c) {
  if (c.getFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS)) return engine::ConstraintMode::kObey;
  if (c.getFlag(BuilderFlag::kPREFER_PRECISION_CONSTRAINTS)) return engine::ConstraintMode::kPrefer;
  return engine::ConstraintMode::kNone;
}

Expected<std::string> build(Graph& g, const BuilderConfig& c, Logger& logger, const Network& network) {
  KILN_RETURN_IF_ERROR(check_mapped_files(g));
  engine::EngineModel model;
  DeviceRecord device;
  KILN_ASSIGN_OR_RETURN(const BackendProvider* backend, pick_backend(c, logger, model, device));
  KILN_ASSIGN_OR_RETURN(auto profiles, resolve_profiles(g, c));
  if (c.getInt8Tolerance() < 0 || !std::isfinite(c.getInt8Tolerance()))
    return err("INT8 tolerance ", c.getInt8Tolerance(), ": expected a relative L2 error > 0 (0 turns the guard off)");
  if (c.getInt8Tolerance() > 0 && !c.getFlag(BuilderFlag::kINT8))
    return err("an INT8 tolerance (accuracy guard) needs the INT8 builder flag (--int8 or --best)");
  KILN_ASSIGN_OR_RETURN(engine::LayerPrecisions lp,
                        engine::LayerPrecisions::resolve(g, network.layerPrecisions(), network.layerOutputTypes(),
                                                         constraint_mode(c), c.getFlag(BuilderFlag::kFP16),
                                                         c.getFlag(BuilderFlag::kINT8)));
  // INT8 (issue 13): activation scales from the cache or calibration, on the graph as imported.
  quant::CalibrationResult int8;
  if (c.getFlag(BuilderFlag::kINT8)) {
    std::map<std::string, std::vector<int64_t>> opt;
    for (const auto& in : profiles[0]) opt[in.input] = in.opt;
    KILN_ASSIGN_OR_RETURN(int8, quant::calibrate_for_build(g, c, opt));
  }

  ProgressMonitor* pm = c.getProgressMonitor();
  if (c.getBuilderOptimizationLevel() > 0) {
    if (pm) pm->phaseStart("Graph optimization", nullptr, 1);
    passes::PassContext pctx;
    pctx.evaluate = cpu::run_node;  // the host evaluates constant subgraphs
    if (c.getFlag(BuilderFlag::kFP16)) pctx.reduced_precision = DataType::kFloat16;
    else if (c.getFlag(BuilderFlag::kBF16)) pctx.reduced_precision = DataType::kBFloat16;
    // Float16 convolutions channels-last or not: the backend's answer for its device and the
    // profiles' opt batch (the CUDA backend: a batch threshold measured per GPU).
    pctx.channels_last = pctx.reduced_precision == DataType::kFloat16 && backend->prefers_channels_last(opt_batch(profiles));
    pctx.has_kernel = [backend](const std::string& domain, const std::string& op) { return backend->has_kernel(domain, op); };
    pctx.supports = [backend](const Node& n, std::string* why) {
      Support s = backend->supports(n);
      if (!s.ok && why) *why = s.reason;
      return s.ok;
    };
    if (!lp.empty()) pctx.keep_float32 = [&lp](const Node& n) { return lp.of(n).precision == DataType::kFloat32; };
    KILN_RETURN_IF_ERROR(passes::run_pipeline(g, pctx));
    if (pm) pm->phaseFinish("Graph optimization");
  } else {
    logger.log(Logger::Severity::kINFO, "builder optimization level 0: no graph optimization passes");
  }

  KILN_RETURN_IF_ERROR(lp.check_names(g));
  auto missing = cpu::unsupported_ops(g);
  if (!missing.empty()) {
    std::string m = "no CPU kernel for:";
    for (const auto& x : missing) m += "\n  " + x;
    return Status::error(m);
  }
  std::map<const Node*, std::string> why_float;  // INT8 layers kept in float, and why
  KILN_ASSIGN_OR_RETURN(quant::Int8Layers q8, apply_int8(g, c, lp, int8, model.backend == backendName(BackendKind::kCPU),
                                                         profiles[0], why_float, logger));
  for (const auto& [name, scale] : int8.scales) model.int8_activation_scales.push_back({name, {scale}, 0, ""});
  for (const auto& w : q8.weights) model.int8_weight_scales.push_back({w.tensor, w.scales, w.axis, w.layer});
  if (!int8.scales.empty()) model.int8_calibration = int8.from_cache ? "cache" : "calibrated";
  std::set<const Node*> int8_simulated;
  for (const auto& l : q8.simulated) int8_simulated.insert(l.node);
  // Shape-check every profile at min, opt and max; the arena is sized at max; tactics are picked
  // at the first profile's opt shapes.
  std::optional<ValueShapes> opt_shapes;
  for (size_t pi = 0; pi < profiles.size(); ++pi) {
    for (int k = 0; k < 3; ++k) {
      std::map<std::string, std::vector<int64_t>> dims;
      for (const auto& in : profiles[pi]) dims[in.input] = k == 0 ? in.min : k == 1 ? in.opt : in.max;
      auto shapes = engine::evaluate_shapes(g, dims);
      if (!shapes) return err("profile ", pi, " (", k == 0 ? "min" : k == 1 ? "opt" : "max", " shapes): ",
                              shapes.status().message());
      if (k == 1 && pi == 0) opt_shapes = *shapes;
      if (k != 2) continue;
      // The activation arena at the max shapes, laid out as the backends lay it out.
      auto plan = plan_graph_memory(
          g, *shapes,
          [&](size_t i) {
            for (const Value* o : g.nodes()[i]->outputs)
              if (o && !shapes->values.count(o)) return true;
            return false;
          },
          [&](size_t i) { return is_view_op(*g.nodes()[i]); });
      model.activation_bytes = std::max(model.activation_bytes, plan.arena_bytes);
      char line[160];
      std::snprintf(line, sizeof line, "Activation memory (profile %zu, max shapes): arena %llu bytes, lower bound %llu bytes (ratio %.3f)",
                    pi, static_cast<unsigned long long>(plan.arena_bytes), static_cast<unsigned long long>(plan.lower_bound),
                    plan.lower_bound ? double(plan.arena_bytes) / double(plan.lower_bound) : 1.0);
      logger.log(Logger::Severity::kINFO, line);
    }
  }
  if (pm) pm->phaseStart("Tactic selection", nullptr, static_cast<int>(g.nodes().size()));
  BackendOptions bopts;
  bopts.workspace_bytes = c.getMemoryPoolLimit(MemoryPoolType::kWORKSPACE);
  bopts.tf32 = c.getFlag(BuilderFlag::kTF32);
  bopts.optimization_level = c.getBuilderOptimizationLevel();
  if (!opt_shapes) return err("the engine has no optimization profile");
  KILN_RETURN_IF_ERROR(choose_tactics(g, *backend, *opt_shapes, bopts, logger, model.tactics));
  // Kernel auto-tuning (src/tuning): each layer's candidates timed (or read from the timing cache).
  std::vector<tuning::LayerTuning> tuned;
  KILN_RETURN_IF_ERROR(tuning::run_tuning_step(g, *backend, device, *opt_shapes, bopts, c, model.tactics, tuned));
  for (const auto& t : tuned)
    model.timings.push_back({t.candidates, t.ms, t.runner_up, t.runner_up_ms, t.heuristic, t.heuristic_ms});
  for (size_t i = 0; i < g.nodes().size(); ++i)
    logger.log(Logger::Severity::kVERBOSE, (g.nodes()[i]->label() + " -> tactic " + model.tactics[i]).c_str());
  int step = 0;
  for (const auto& n : g.nodes()) {
    const Value* out = n->outputs.empty() ? nullptr : n->outputs[0];
    model.precisions.push_back(out ? dtype_name(out->dtype) : "");
    const engine::LayerConstraint k = lp.of(*n);
    if (int8_simulated.count(n.get())) model.precisions.back() += " (INT8 simulated: quantized input and weights)";
    else if (why_float.count(n.get())) model.precisions.back() += " (not INT8: " + why_float[n.get()] + ")";
    else if (!int8.scales.empty() && quant::is_quantizable_layer(*n)) model.precisions.back() += " (INT8 scales recorded; no INT8 kernel yet)";
    else if (k.precision == DataType::kFloat32 && out && out->dtype == DataType::kFloat32 && c.getFlag(BuilderFlag::kFP16))
      model.precisions.back() += " (" + k.reason + ")";
    if (model.precisions.back().find('(') != std::string::npos)
      logger.log(Logger::Severity::kVERBOSE, (n->label() + ": " + model.precisions.back()).c_str());
    if (pm && !pm->stepComplete("Tactic selection", step++)) return err("build cancelled by the progress monitor");
  }
  if (pm) pm->phaseFinish("Tactic selection");
  model.options = {c.getFlag(BuilderFlag::kFP16), c.getFlag(BuilderFlag::kBF16), c.getFlag(BuilderFlag::kINT8),
                   c.getFlag(BuilderFlag::kTF32),  c.getFlag(BuilderFlag::kSTRICT_TYPES),
                   c.getMemoryPoolLimit(MemoryPoolType::kWORKSPACE)};
  model.profiles = std::move(profiles);
  KILN_RETURN_IF_ERROR(check_mapped_files(g));  // again: the passes may have taken a while
  // The engine owns a graph; the network keeps its own. Serialization reads g in place (and
  // hands it back even when an allocation throws).
  struct Borrowed {
    engine::EngineModel& m;
    ~Borrowed() { (void)m.graph.release(); }
  } borrowed{model};
  model.graph.reset(&g);
  return engine::serialize(model);
}

}  // namespace

std::vector<uint8_t> Builder::buildSerializedNetwork(Network& network, const BuilderConfig& config) {
  ScopedLogger route(logger_);
  if (!network.graph()) {
    log_error(logger_, "buildSerializedNetwork: the network is empty (parse a model first)");
    return {};
  }
  try {
    auto bytes = build(*network.graph(), config, logger_, network);
    if (!bytes) {
      log_error(logger_, bytes.status().message());
      return {};
    }
    return std::vector<uint8_t>(bytes->begin(), bytes->end());
  } catch (const std::bad_alloc&) {
    log_error(logger_, "buildSerializedNetwork: out of memory on the host while building the engine");
    return {};
  }
}

}  // namespace kiln
