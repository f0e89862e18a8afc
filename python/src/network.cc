// trt.Builder, INetworkDefinition and its ITensors, OnnxParser, IBuilderConfig and
// IOptimizationProfile over kiln::Builder, Network, OnnxParser, BuilderConfig, OptimizationProfile.
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include <cstdlib>
#include <cstring>

#include "bindings.h"

namespace kiln::python {

namespace {

// TensorRT's BuilderFlag names. Those kiln's builder knows map to kiln::BuilderFlag; a few are
// accepted without effect (said in the docstring); the others raise NotImplementedError.
enum class Flag {
  FP16, BF16, INT8, TF32, STRICT_TYPES, OBEY_PRECISION_CONSTRAINTS, GPU_FALLBACK, DISABLE_TIMING_CACHE, DIRECT_IO,
  FP8, INT4, DEBUG, REFIT, SPARSE_WEIGHTS, SAFETY_SCOPE, PREFER_PRECISION_CONSTRAINTS, REJECT_EMPTY_ALGORITHMS,
  VERSION_COMPATIBLE, EXCLUDE_LEAN_RUNTIME, STRIP_PLAN, WEIGHT_STREAMING, kCount
};
const char* kFlagNames[] = {
  "FP16", "BF16", "INT8", "TF32", "STRICT_TYPES", "OBEY_PRECISION_CONSTRAINTS", "GPU_FALLBACK", "DISABLE_TIMING_CACHE",
  "DIRECT_IO", "FP8", "INT4", "DEBUG", "REFIT", "SPARSE_WEIGHTS", "SAFETY_SCOPE", "PREFER_PRECISION_CONSTRAINTS",
  "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "STRIP_PLAN", "WEIGHT_STREAMING"};
static_assert(sizeof(kFlagNames) / sizeof(kFlagNames[0]) == static_cast<size_t>(Flag::kCount));

enum class NetworkFlag { EXPLICIT_BATCH = 0, STRONGLY_TYPED = 1 };
enum class PoolType { WORKSPACE, DLA_MANAGED_SRAM, DLA_LOCAL_DRAM, DLA_GLOBAL_DRAM, TACTIC_DRAM, TACTIC_SHARED_MEMORY };

struct PyBuilder {
  explicit PyBuilder(ILogger& l) : logger(l), builder(l) {}
  ILogger& logger;
  Builder builder;
  int max_batch_size = 1;
};

// TensorRT's ITimingCache: tactic times shared across builds and models (kiln::TimingCache).
struct PyTimingCache {
  std::shared_ptr<TimingCache> cache;
};

// TensorRT's TacticSource names, and kiln's own sources, as bits of set_tactic_sources.
enum class Source { CUBLAS = 0, CUBLAS_LT = 1, CUDNN = 2, EDGE_MASK_CONVOLUTIONS = 3, JIT_CONVOLUTIONS = 4, KILN = 5,
                    OPENBLAS = 6, CPU_LOOPS = 7 };

struct PyConfig {
  BuilderConfig cfg;
  bool noop_flags[static_cast<int>(Flag::kCount)] = {};
  nb::object calibrator;  // the Python calibrator, kept alive while set
  nb::object progress;    // the Python progress monitor, kept alive while set
};

// A network input or output (TensorRT's ITensor); the network is kept alive by keep_alive.
struct TensorRef {
  Network* net;
  bool input;
  int index;
};

bool set_flag(PyConfig& c, Flag f, bool on) {
  auto kiln_flag = [&](BuilderFlag k) { on ? c.cfg.setFlag(k) : c.cfg.clearFlag(k); return true; };
  auto weakly_typed = [&](BuilderFlag k) {
    if (on)
      warn_deprecated(std::string("BuilderFlag.") + kFlagNames[static_cast<int>(f)] + " is deprecated (TensorRT 10.12; removed "
                      "in 11, whose networks are strongly typed); kiln keeps it");
    return kiln_flag(k);
  };
  switch (f) {
    case Flag::FP16: return weakly_typed(BuilderFlag::kFP16);
    case Flag::BF16: return weakly_typed(BuilderFlag::kBF16);
    case Flag::INT8: return weakly_typed(BuilderFlag::kINT8);
    case Flag::TF32: return kiln_flag(BuilderFlag::kTF32);
    case Flag::STRICT_TYPES:
      warn_deprecated("BuilderFlag.STRICT_TYPES is deprecated (TensorRT 8.2): use OBEY_PRECISION_CONSTRAINTS");
      return kiln_flag(BuilderFlag::kSTRICT_TYPES);
    case Flag::OBEY_PRECISION_CONSTRAINTS: return kiln_flag(BuilderFlag::kSTRICT_TYPES);
    case Flag::PREFER_PRECISION_CONSTRAINTS: return kiln_flag(BuilderFlag::kPREFER_PRECISION_CONSTRAINTS);
    case Flag::DISABLE_TIMING_CACHE: return kiln_flag(BuilderFlag::kDISABLE_TIMING_CACHE);
    case Flag::GPU_FALLBACK: case Flag::DIRECT_IO:
      c.noop_flags[static_cast<int>(f)] = on;
      return true;
    default:
      if (!on) return true;
      raise(PyExc_NotImplementedError, std::string("BuilderFlag.") + kFlagNames[static_cast<int>(f)] +
                                           " is not supported by kiln (supported: FP16, BF16, INT8, TF32, "
                                           "OBEY_PRECISION_CONSTRAINTS/STRICT_TYPES, PREFER_PRECISION_CONSTRAINTS, "
                                           "DISABLE_TIMING_CACHE; accepted without effect: GPU_FALLBACK, DIRECT_IO)");
  }
}

bool get_flag(const PyConfig& c, Flag f) {
  switch (f) {
    case Flag::FP16: return c.cfg.getFlag(BuilderFlag::kFP16);
    case Flag::BF16: return c.cfg.getFlag(BuilderFlag::kBF16);
    case Flag::INT8: return c.cfg.getFlag(BuilderFlag::kINT8);
    case Flag::TF32: return c.cfg.getFlag(BuilderFlag::kTF32);
    case Flag::STRICT_TYPES: case Flag::OBEY_PRECISION_CONSTRAINTS: return c.cfg.getFlag(BuilderFlag::kSTRICT_TYPES);
    case Flag::PREFER_PRECISION_CONSTRAINTS: return c.cfg.getFlag(BuilderFlag::kPREFER_PRECISION_CONSTRAINTS);
    case Flag::DISABLE_TIMING_CACHE: return c.cfg.getFlag(BuilderFlag::kDISABLE_TIMING_CACHE);
    default: return c.noop_flags[static_cast<int>(f)];
  }
}

void check_pool(PoolType p) {
  if (p != PoolType::WORKSPACE)
    raise(PyExc_NotImplementedError, "kiln has one memory pool, MemoryPoolType.WORKSPACE (the scratch each CUDA "
                                     "context gives cuBLASLt/cuDNN); DLA and tactic pools are not supported");
}

BackendKind backend_from_env() {
  const char* e = std::getenv("KILN_BACKEND");
  if (!e || !*e || !std::strcmp(e, "auto")) return BackendKind::kAUTO;
  if (!std::strcmp(e, "cpu")) return BackendKind::kCPU;
  if (!std::strcmp(e, "cuda")) return BackendKind::kCUDA;
  raise(PyExc_ValueError, std::string("KILN_BACKEND='") + e + "': expected auto, cpu or cuda");
}

Dims checked_dims(nb::handle seq, const char* what) {
  Dims d = to_dims(seq, what);
  for (int64_t x : d)
    if (x < 0) raise(PyExc_ValueError, std::string(what) + ": dims must be >= 0, got " + dimsToString(d));
  return d;
}

nb::object build(PyBuilder& b, Network& net, PyConfig& c) {
  std::vector<uint8_t> plan;
  ProgressMonitor* user = c.cfg.getProgressMonitor();
  LoggerProgress progress(b.logger, user);  // phases through the logger, and to the user's monitor
  c.cfg.setProgressMonitor(&progress);
  {
    nb::gil_scoped_release release;
    plan = b.builder.buildSerializedNetwork(net, c.cfg);
  }
  c.cfg.setProgressMonitor(user);
  if (user) rethrow_monitor_error(user);
  if (c.calibrator.is_valid() && !c.calibrator.is_none()) rethrow_calibrator_error(c.cfg.getInt8Calibrator());
  if (plan.empty()) return nb::none();
  auto mem = std::make_shared<HostMemory>();
  mem->bytes = std::move(plan);
  return nb::cast(mem);
}

}  // namespace

void bind_network(nb::module_& m) {
  nb::enum_<TensorType>(m, "DataType", nb::is_arithmetic(), "Element types of tensors (kiln.nptype gives numpy's).")
      .value("FLOAT", TensorType::kFLOAT).value("HALF", TensorType::kHALF).value("BF16", TensorType::kBF16)
      .value("INT8", TensorType::kINT8).value("UINT8", TensorType::kUINT8).value("INT32", TensorType::kINT32)
      .value("INT64", TensorType::kINT64).value("BOOL", TensorType::kBOOL).value("DOUBLE", TensorType::kDOUBLE)
      .value("INT16", TensorType::kINT16).value("UINT16", TensorType::kUINT16).value("UINT32", TensorType::kUINT32)
      .value("UINT64", TensorType::kUINT64);
  m.def("_dtype_itemsize", [](TensorType t) { return tensorTypeSize(t); });

  nb::enum_<NetworkFlag>(m, "NetworkDefinitionCreationFlag", nb::is_arithmetic(),
                         "Flags of Builder.create_network, as bits: 1 << int(flag).")
      .value("EXPLICIT_BATCH", NetworkFlag::EXPLICIT_BATCH, "Deprecated, no effect: every network is explicit-batch.")
      .value("STRONGLY_TYPED", NetworkFlag::STRONGLY_TYPED, "Not supported by kiln (NotImplementedError).");

  auto flag = nb::enum_<Flag>(m, "BuilderFlag", nb::is_arithmetic(),
      "Builder options. Supported: FP16, BF16, INT8 (calibrated; CPU engines simulate INT8, CUDA engines compute "
      "in float for now), TF32 (on by default), OBEY_PRECISION_CONSTRAINTS (= STRICT_TYPES, deprecated), "
      "PREFER_PRECISION_CONSTRAINTS, DISABLE_TIMING_CACHE (the build neither reads nor records a timing cache). "
      "Accepted without effect: GPU_FALLBACK (no DLA: every layer runs on the GPU or as a CPU fallback "
      "layer), DIRECT_IO (I/O keeps its types). set_flag raises NotImplementedError for the others.");
  for (int i = 0; i < static_cast<int>(Flag::kCount); ++i) flag.value(kFlagNames[i], static_cast<Flag>(i));

  nb::enum_<PoolType>(m, "MemoryPoolType", nb::is_arithmetic())
      .value("WORKSPACE", PoolType::WORKSPACE).value("DLA_MANAGED_SRAM", PoolType::DLA_MANAGED_SRAM)
      .value("DLA_LOCAL_DRAM", PoolType::DLA_LOCAL_DRAM).value("DLA_GLOBAL_DRAM", PoolType::DLA_GLOBAL_DRAM)
      .value("TACTIC_DRAM", PoolType::TACTIC_DRAM).value("TACTIC_SHARED_MEMORY", PoolType::TACTIC_SHARED_MEMORY);

  nb::enum_<BackendKind>(m, "Backend", nb::is_arithmetic(),
                         "kiln's own: the backend an engine is built for (AUTO: CUDA when a GPU is usable).")
      .value("AUTO", BackendKind::kAUTO).value("CPU", BackendKind::kCPU).value("CUDA", BackendKind::kCUDA);

  nb::class_<TensorRef>(m, "ITensor", "A network input or output.")
      .def_prop_ro("name", [](const TensorRef& t) { return t.input ? t.net->getInputName(t.index) : t.net->getOutputName(t.index); })
      .def_prop_rw("shape",
          [](const TensorRef& t) { return to_tuple(t.input ? t.net->getInputDims(t.index) : t.net->getOutputDims(t.index)); },
          [](TensorRef& t, nb::handle shape) {
            if (!t.input) raise(PyExc_ValueError, "only a network input's shape can be set (output shapes are inferred)");
            std::string error;
            if (!t.net->setInputDims(t.index, to_dims(shape, "ITensor.shape"), &error)) raise(PyExc_ValueError, error);
          },
          "Dims (-1 where dynamic). Setting an input's shape fixes it, as TensorRT; -1 keeps a dim dynamic.")
      .def_prop_ro("dtype", [](const TensorRef& t) { return t.input ? t.net->getInputType(t.index) : t.net->getOutputType(t.index); })
      .def_prop_ro("is_network_input", [](const TensorRef& t) { return t.input; })
      .def_prop_ro("is_network_output", [](const TensorRef& t) { return !t.input; })
      .def("__repr__", [](const TensorRef& t) {
        auto d = t.input ? t.net->getInputDims(t.index) : t.net->getOutputDims(t.index);
        return std::string("<kiln.ITensor '") + (t.input ? t.net->getInputName(t.index) : t.net->getOutputName(t.index)) +
               "' " + dimsToString(d) + ">";
      });

  auto tensor = [](Network& n, int i, bool input) {
    int count = input ? n.getNbInputs() : n.getNbOutputs();
    if (i < 0 || i >= count)
      raise(PyExc_IndexError, std::string("network ") + (input ? "input " : "output ") + std::to_string(i) +
                                  " does not exist (it has " + std::to_string(count) + ")");
    return TensorRef{&n, input, i};
  };
  nb::class_<Network>(m, "INetworkDefinition", "A network, filled by OnnxParser.")
      .def_prop_ro("num_inputs", &Network::getNbInputs)
      .def_prop_ro("num_outputs", &Network::getNbOutputs)
      .def_prop_ro("num_layers", &Network::getNbLayers)
      .def("get_input", [tensor](Network& n, int i) { return tensor(n, i, true); }, nb::arg("index"), nb::keep_alive<0, 1>(),
           "Input i as an ITensor (name, shape, dtype; setting .shape fixes it). IndexError past num_inputs.")
      .def("get_output", [tensor](Network& n, int i) { return tensor(n, i, false); }, nb::arg("index"), nb::keep_alive<0, 1>(),
           "Output i as an ITensor (shape inferred from the model). IndexError past num_outputs.")
      .def("__len__", &Network::getNbLayers)
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle, nb::args) {});

  nb::class_<ParserError>(m, "ParserError", "One error of OnnxParser: its node's name and operator, and why.")
      .def("desc", [](const ParserError& e) { return e.message; }, "Why the model could not be parsed.")
      .def("node_name", [](const ParserError& e) { return e.node; }, "The node's name ('' when the error is about no one node).")
      .def("node_operator", [](const ParserError& e) { return e.op_type; }, "The node's operator, e.g. 'Conv' ('' if none).")
      .def("__str__", [](const ParserError& e) {
        return e.node.empty() && e.op_type.empty() ? e.message
                                                   : "node '" + e.node + "' (" + e.op_type + "): " + e.message;
      })
      .def("__repr__", [](const ParserError& e) { return "<kiln.ParserError " + e.message + ">"; });

  nb::class_<OnnxParser>(m, "OnnxParser", "Fills a network from an ONNX model.")
      .def(nb::init<Network&, ILogger&>(), nb::arg("network"), nb::arg("logger"), nb::keep_alive<1, 2>(), nb::keep_alive<1, 3>())
      .def("parse", [](OnnxParser& p, nb::handle model, nb::handle path) {
            BufferView buf(model, "OnnxParser.parse");
            std::string dir;
            if (!path.is_none()) {
              std::string s = str_of(path);
              auto slash = s.find_last_of('/');
              dir = slash == std::string::npos ? "." : s.substr(0, slash);
            }
            nb::gil_scoped_release release;
            return p.parse(buf.data(), buf.size(), dir);
          }, nb::arg("model"), nb::arg("path") = nb::none(),
          "Parses ONNX bytes; `path` (the model file's) locates external data. False on errors (see get_error).")
      .def("parse_from_file", [](OnnxParser& p, const std::string& path) {
            nb::gil_scoped_release release;
            return p.parseFromFile(path);
          }, nb::arg("model"), "Parses an ONNX file (external data next to it is found). False on errors (see get_error).")
      .def_prop_ro("num_errors", &OnnxParser::getNbErrors)
      .def("get_error", [](const OnnxParser& p, int i) {
            if (i < 0 || i >= p.getNbErrors())
              raise(PyExc_IndexError, "parser error " + std::to_string(i) + " does not exist (there are " +
                                          std::to_string(p.getNbErrors()) + ")");
            return p.getError(i);
          }, nb::arg("index"), "Error i (ParserError: desc(), node_name(), node_operator()); IndexError past num_errors.")
      .def("clear_errors", &OnnxParser::clearErrors, "Forgets the errors of earlier parse calls.")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle, nb::args) {});

  nb::class_<OptimizationProfile>(m, "IOptimizationProfile", "min/opt/max shapes of dynamic inputs.")
      .def("set_shape", [](OptimizationProfile& p, const std::string& input, nb::handle min, nb::handle opt, nb::handle max) {
            Dims d[3] = {checked_dims(min, "set_shape min"), checked_dims(opt, "set_shape opt"), checked_dims(max, "set_shape max")};
            if (d[0].size() != d[1].size() || d[1].size() != d[2].size())
              raise(PyExc_ValueError, "set_shape('" + input + "'): min, opt and max have different ranks (" +
                                          dimsToString(d[0]) + ", " + dimsToString(d[1]) + ", " + dimsToString(d[2]) + ")");
            for (size_t k = 0; k < d[0].size(); ++k)
              if (d[0][k] > d[1][k] || d[1][k] > d[2][k])
                raise(PyExc_ValueError, "set_shape('" + input + "'): need min <= opt <= max in every dim, got " +
                                            dimsToString(d[0]) + ", " + dimsToString(d[1]) + ", " + dimsToString(d[2]));
            for (int k = 0; k < 3; ++k) p.setDimensions(input, static_cast<OptProfileSelector>(k), d[k]);
          }, nb::arg("input"), nb::arg("min"), nb::arg("opt"), nb::arg("max"),
          "Shape range of a dynamic input: min <= opt <= max in every dim, equal ranks (ValueError otherwise). "
          "Kernels are chosen for opt; run-time shapes must lie within [min, max].")
      .def("get_shape", [](const OptimizationProfile& p, const std::string& input) {
            nb::list l;
            if (!p.entries().count(input)) return l;
            for (int k = 0; k < 3; ++k) l.append(to_tuple(p.getDimensions(input, static_cast<OptProfileSelector>(k))));
            return l;
          }, nb::arg("input"), "[min, opt, max] of an input, or [] if the profile does not name it.")
      .def("set_shape_input", [](OptimizationProfile&, nb::args) {
            raise(PyExc_NotImplementedError, "set_shape_input: kiln has no shape-tensor inputs (values of shape "
                                             "arithmetic are evaluated on the host)");
          }, "Not supported (NotImplementedError): kiln has no shape-tensor inputs.");

  nb::enum_<Source>(m, "TacticSource", nb::is_arithmetic(),
      "Where tactics come from, as bits of IBuilderConfig.set_tactic_sources (1 << int(source)): CUBLAS_LT and "
      "CUDNN (CUDA libraries), KILN (kiln's own CUDA kernels), OPENBLAS and CPU_LOOPS (the CPU backend's GEMMs; "
      "kiln's own). CUBLAS, EDGE_MASK_CONVOLUTIONS and JIT_CONVOLUTIONS are accepted and change nothing (kiln has "
      "no such tactics).")
      .value("CUBLAS", Source::CUBLAS).value("CUBLAS_LT", Source::CUBLAS_LT).value("CUDNN", Source::CUDNN)
      .value("EDGE_MASK_CONVOLUTIONS", Source::EDGE_MASK_CONVOLUTIONS).value("JIT_CONVOLUTIONS", Source::JIT_CONVOLUTIONS)
      .value("KILN", Source::KILN).value("OPENBLAS", Source::OPENBLAS).value("CPU_LOOPS", Source::CPU_LOOPS);

  nb::class_<PyTimingCache>(m, "ITimingCache",
      "Tactic times keyed by device, library versions, layer signature and tactic, shared across builds and models "
      "(IBuilderConfig.create_timing_cache / set_timing_cache). The builder reads it before timing a layer and "
      "records what it timed into it; serialize() gives the bytes a later build starts from.")
      .def("serialize", [](const PyTimingCache& t) {
            auto mem = std::make_shared<HostMemory>();
            mem->bytes = t.cache->serialize();
            return mem;
          }, "The cache's bytes (IHostMemory, with the buffer protocol): what create_timing_cache and kiln "
             "--timingCacheFile read.")
      .def("combine", [](PyTimingCache& t, const PyTimingCache& other, bool) {
            t.cache->combine(*other.cache);
            return true;
          }, nb::arg("input_cache"), nb::arg("ignore_mismatch") = false,
          "Adds the entries of input_cache this cache lacks. Entries of other devices or library versions are kept "
          "under their own keys (a build uses only those of its device), so ignore_mismatch changes nothing.")
      .def("reset", [](PyTimingCache& t) { t.cache->reset(); return true; }, "Removes every entry.")
      .def("__len__", [](const PyTimingCache& t) { return t.cache->size(); }, "kiln's own: the number of entries.");

  nb::class_<PyConfig>(m, "IBuilderConfig", "Build options: flags, workspace, optimization profiles, calibrator.")
      .def("set_flag", [](PyConfig& c, Flag f) { set_flag(c, f, true); }, nb::arg("flag"),
           "Turns a BuilderFlag on (see BuilderFlag for what kiln supports; NotImplementedError for the others; "
           "FP16/BF16/INT8 warn as deprecated by TensorRT 10.12 but work).")
      .def("clear_flag", [](PyConfig& c, Flag f) { set_flag(c, f, false); }, nb::arg("flag"), "Turns a BuilderFlag off.")
      .def("get_flag", &get_flag, nb::arg("flag"), "Whether a BuilderFlag is on.")
      .def_prop_rw("flags",
          [](const PyConfig& c) {
            int64_t bits = 0;
            for (int i = 0; i < static_cast<int>(Flag::kCount); ++i) if (get_flag(c, static_cast<Flag>(i))) bits |= int64_t(1) << i;
            return bits;
          },
          [](PyConfig& c, int64_t bits) {
            for (int i = 0; i < static_cast<int>(Flag::kCount); ++i) {
              bool on = (bits >> i) & 1;
              if (on != get_flag(c, static_cast<Flag>(i))) set_flag(c, static_cast<Flag>(i), on);
            }
          }, "All flags as bits: 1 << int(BuilderFlag.X).")
      .def("set_memory_pool_limit", [](PyConfig& c, PoolType p, size_t n) { check_pool(p); c.cfg.setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, n); },
           nb::arg("pool"), nb::arg("pool_size"),
           "Limits a memory pool, in bytes: WORKSPACE is the scratch each CUDA context gives cuBLASLt/cuDNN (tactics "
           "needing more are skipped; default 256 MiB). Other pools: NotImplementedError.")
      .def("get_memory_pool_limit", [](PyConfig& c, PoolType p) { check_pool(p); return c.cfg.getMemoryPoolLimit(MemoryPoolType::kWORKSPACE); },
           nb::arg("pool"), "The pool's limit in bytes (WORKSPACE only).")
      .def_prop_rw("max_workspace_size",
          [](PyConfig& c) {
            warn_deprecated("IBuilderConfig.max_workspace_size is deprecated (removed in TensorRT 10): use get_memory_pool_limit(MemoryPoolType.WORKSPACE)");
            return c.cfg.getMemoryPoolLimit(MemoryPoolType::kWORKSPACE);
          },
          [](PyConfig& c, size_t n) {
            warn_deprecated("IBuilderConfig.max_workspace_size is deprecated (removed in TensorRT 10): use set_memory_pool_limit(MemoryPoolType.WORKSPACE, n)");
            c.cfg.setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, n);
          })
      .def("add_optimization_profile", [](PyConfig& c, const OptimizationProfile& p) { return c.cfg.addOptimizationProfile(p); },
           nb::arg("profile"), "Adds a profile; returns its index, or -1 if it is invalid.")
      .def_prop_ro("num_optimization_profiles", [](PyConfig& c) { return c.cfg.getNbOptimizationProfiles(); })
      .def_prop_rw("builder_optimization_level",
          [](PyConfig& c) { return c.cfg.getBuilderOptimizationLevel(); },
          [](PyConfig& c, int level) {
            if (level < 0 || level > 5) raise(PyExc_ValueError, "builder_optimization_level must be 0..5, got " + std::to_string(level));
            c.cfg.setBuilderOptimizationLevel(level);
          }, "0 runs no graph optimizations and times no tactic; 1..5 the whole pipeline and tactic timing (default 3; "
             "CUDA engines are tuned only when it is set).")
      .def("create_timing_cache", [](PyConfig& c, nb::handle serialized) {
            BufferView buf(serialized, "create_timing_cache");
            std::string error;
            auto cache = c.cfg.createTimingCache(buf.size() ? buf.data() : nullptr, buf.size(), &error);
            if (!cache) raise(PyExc_ValueError, "create_timing_cache: " + error);
            return PyTimingCache{cache};
          }, nb::arg("serialized_timing_cache"),
          "An ITimingCache: empty from b\"\", else read from a cache's bytes (ITimingCache.serialize, or a "
          "--timingCacheFile file). ValueError, with the reason, when the bytes are not a timing cache.")
      .def("set_timing_cache", [](PyConfig& c, const PyTimingCache& t, bool) {
            c.cfg.setTimingCache(t.cache);
            return true;
          }, nb::arg("cache"), nb::arg("ignore_mismatch") = false,
          "Builds with this cache: layers whose every candidate it has are not timed again, what is timed is "
          "recorded into it. Entries of another device or library versions are not used (they stay in the cache), "
          "so ignore_mismatch changes nothing.")
      .def("get_timing_cache", [](PyConfig& c) -> nb::object {
            auto cache = c.cfg.getTimingCache();
            return cache ? nb::cast(PyTimingCache{cache}) : nb::none();
          }, "The cache set with set_timing_cache, or None.")
      .def("set_tactic_sources", [](PyConfig& c, uint32_t bits) {
            if (bits >> 8) raise(PyExc_ValueError, "set_tactic_sources: unknown bits in " + std::to_string(bits));
            c.cfg.setTacticSources(bits);
            return true;
          }, nb::arg("tactic_sources"),
          "Which tactic sources the builder may time: bits 1 << int(TacticSource.X). A layer whose every candidate "
          "is left out keeps its backend's default.")
      .def("get_tactic_sources", [](PyConfig& c) { return c.cfg.getTacticSources(); }, "The tactic source bits.")
      .def_prop_rw("avg_timing_iterations", [](PyConfig& c) { return c.cfg.getAvgTimingIterations(); },
          [](PyConfig& c, int n) {
            if (n < 1) raise(PyExc_ValueError, "avg_timing_iterations must be >= 1, got " + std::to_string(n));
            c.cfg.setAvgTimingIterations(n);
          }, "Timed runs per tactic (the median is kept), after warm-up runs.")
      .def_prop_rw("backend", [](PyConfig& c) { return c.cfg.getBackend(); }, [](PyConfig& c, BackendKind b) { c.cfg.setBackend(b); },
          "kiln's own: Backend.AUTO (default, or the KILN_BACKEND environment variable: auto|cpu|cuda), CPU or CUDA.")
      .def_prop_rw("int8_calibrator",
          [](PyConfig& c) { return c.calibrator.is_valid() ? c.calibrator : nb::none(); },
          [](PyConfig& c, nb::handle cal) {
            c.cfg.setInt8Calibrator(cal.is_none() ? nullptr : calibrator_from(cal));
            c.calibrator = nb::borrow(cal);
          }, nb::for_setter(nb::arg("calibrator").none()),
          "An IInt8Calibrator subclass: with BuilderFlag.INT8 the builder calibrates through it (or reads its cache).")
      .def_prop_rw("progress_monitor",
          [](PyConfig& c) { return c.progress.is_valid() ? c.progress : nb::none(); },
          [](PyConfig& c, nb::handle m) {
            c.cfg.setProgressMonitor(m.is_none() ? nullptr : progress_monitor_from(m));
            c.progress = nb::borrow(m);
          }, nb::for_setter(nb::arg("monitor").none()),
          "An IProgressMonitor subclass told each build phase and step (or None). The phases also go to the "
          "builder's logger either way.")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle, nb::args) {});

  nb::class_<PyBuilder>(m, "Builder", "Builds engines: create_network -> OnnxParser -> build_serialized_network.")
      .def(nb::init<ILogger&>(), nb::arg("logger"), nb::keep_alive<1, 2>())
      .def("create_network", [](PyBuilder& b, int64_t flags) {
            if (flags & (int64_t(1) << int(NetworkFlag::EXPLICIT_BATCH)))
              warn_deprecated("NetworkDefinitionCreationFlag.EXPLICIT_BATCH is deprecated (TensorRT 10) and has no effect: every network is explicit-batch");
            if (flags & (int64_t(1) << int(NetworkFlag::STRONGLY_TYPED)))
              raise(PyExc_NotImplementedError, "NetworkDefinitionCreationFlag.STRONGLY_TYPED is not supported by kiln");
            if (flags & ~int64_t(3)) raise(PyExc_ValueError, "create_network: unknown flag bits " + std::to_string(flags));
            return b.builder.createNetwork();
          }, nb::arg("flags") = 0,
          "An empty network for OnnxParser to fill. flags: bits of NetworkDefinitionCreationFlag; EXPLICIT_BATCH "
          "is accepted with a DeprecationWarning (every network is explicit-batch), STRONGLY_TYPED raises "
          "NotImplementedError.")
      .def("create_builder_config", [](PyBuilder&) {
            auto c = std::make_unique<PyConfig>();
            c->cfg.setBackend(backend_from_env());
            return c;
          }, "A new IBuilderConfig with TensorRT's defaults (TF32 on, 256 MiB workspace); its backend comes from "
             "KILN_BACKEND (auto, cpu, cuda) when set.")
      .def("create_optimization_profile", [](PyBuilder&) { return OptimizationProfile(); },
           "A new, empty IOptimizationProfile (fill it with set_shape, then config.add_optimization_profile).")
      .def("build_serialized_network", &build, nb::arg("network"), nb::arg("config"),
           "Optimizes the network and returns the engine's bytes (IHostMemory, with the buffer protocol), or "
           "None on failure (the reason goes to the logger).")
      .def("build_engine", [](PyBuilder& b, Network& net, PyConfig& c) -> nb::object {
            warn_deprecated("Builder.build_engine is deprecated (removed in TensorRT 10): use build_serialized_network and Runtime.deserialize_cuda_engine");
            nb::object mem = build(b, net, c);
            if (mem.is_none()) return mem;
            nb::object runtime = nb::module_::import_("kiln._kiln").attr("Runtime")(nb::cast(&b.logger, nb::rv_policy::reference));
            return runtime.attr("deserialize_cuda_engine")(mem);
          }, nb::arg("network"), nb::arg("config"),
          "Deprecated (removed in TensorRT 10): builds and loads the engine (ICudaEngine, or None on failure).")
      .def_prop_rw("max_batch_size",
          [](PyBuilder& b) {
            warn_deprecated("Builder.max_batch_size is deprecated (removed in TensorRT 10) and has no effect: batch sizes come from optimization profiles");
            return b.max_batch_size;
          },
          [](PyBuilder& b, int n) {
            warn_deprecated("Builder.max_batch_size is deprecated (removed in TensorRT 10) and has no effect: batch sizes come from optimization profiles");
            b.max_batch_size = n;
          })
      .def_prop_ro("platform_has_fast_fp16", [](PyBuilder&) { return cuda_device_available(); })
      .def_prop_ro("platform_has_tf32", [](PyBuilder&) { return cuda_device_available(); })
      .def_prop_ro("platform_has_fast_int8", [](PyBuilder&) { return false; }, "False: INT8 kernels are not implemented yet.")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle, nb::args) {});
}

}  // namespace kiln::python
