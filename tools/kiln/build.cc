// --onnx -> engine bytes through the public Builder; --saveEngine through an unnamed file linked in.
#include "tools/kiln/build.h"
#include "tools/kiln/calibration.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

namespace kiln::cli {
namespace {

// A counter on a terminal ("\r" updates), plain lines at every 10% when piped.
class CliProgress : public ProgressMonitor {
 public:
  void phaseStart(const char* phase, const char*, int steps) noexcept override {
    steps_ = steps;
    last_decile_ = 0;
    std::printf("[I] Build phase: %s (%d step%s)\n", phase, steps, steps == 1 ? "" : "s");
    std::fflush(stdout);
  }
  bool stepComplete(const char* phase, int step) noexcept override {
    int done = step + 1;
    if (tty_) {
      std::printf("\r[I] %s: %d/%d", phase, done, steps_);
      std::fflush(stdout);
    } else if (steps_ >= 20 && done * 10 / steps_ > last_decile_) {
      last_decile_ = done * 10 / steps_;
      std::printf("[I] %s: %d/%d\n", phase, done, steps_);
    }
    return true;
  }
  void phaseFinish(const char* phase) noexcept override {
    if (tty_ && steps_ > 1) std::printf("\n");
    std::printf("[I] Build phase done: %s\n", phase);
    std::fflush(stdout);
  }

 private:
  bool tty_ = isatty(fileno(stdout));
  int steps_ = 0, last_decile_ = 0;
};

void check_names(const Network& net, const ShapeMap& m, const std::string& flag) {
  std::vector<std::string> names;
  for (int i = 0; i < net.getNbInputs(); ++i) names.push_back(net.getInputName(i));
  for (const auto& [name, dims] : m)
    if (std::find(names.begin(), names.end(), name) == names.end())
      fail(flag, ": the model has no input named '", name, "' (its inputs: ", join(names, ", "), ")");
}

// Profile i from the i-th --minShapes/--optShapes/--maxShapes; a missing one is filled as
// trtexec does (opt <- max <- min; min, max <- opt).
OptimizationProfile make_profile(const Options& o, size_t i) {
  auto get = [i](const std::vector<ShapeMap>& v) { return i < v.size() ? v[i] : ShapeMap{}; };
  ShapeMap mn = get(o.min_shapes), op = get(o.opt_shapes), mx = get(o.max_shapes);
  std::map<std::string, int> names;
  for (const ShapeMap* m : {&mn, &op, &mx}) for (const auto& kv : *m) names[kv.first] = 1;
  OptimizationProfile p;
  for (const auto& [name, _] : names) {
    Dims o_ = op.count(name) ? op[name] : mx.count(name) ? mx[name] : mn[name];
    Dims n_ = mn.count(name) ? mn[name] : o_;
    Dims x_ = mx.count(name) ? mx[name] : o_;
    if (n_.size() != o_.size() || o_.size() != x_.size())
      fail("profile ", i, ": input '", name, "' has min/opt/max shapes of different ranks (", dimsToString(n_), ", ",
           dimsToString(o_), ", ", dimsToString(x_), ")");
    for (size_t k = 0; k < n_.size(); ++k)
      if (n_[k] > o_[k] || o_[k] > x_[k])
        fail("profile ", i, ": input '", name, "' needs min <= opt <= max, got min ", dimsToString(n_), ", opt ",
             dimsToString(o_), ", max ", dimsToString(x_));
    p.setDimensions(name, OptProfileSelector::kMIN, n_);
    p.setDimensions(name, OptProfileSelector::kOPT, o_);
    p.setDimensions(name, OptProfileSelector::kMAX, x_);
  }
  return p;
}

// --maxBatch: inputs with a dynamic batch dim (and no range given) get 1..N on dim 0.
void map_max_batch(const Options& o, const Network& net, OptimizationProfile& p) {
  for (int i = 0; i < net.getNbInputs(); ++i) {
    std::string name = net.getInputName(i);
    Dims d = net.getInputDims(i);
    if (!p.getDimensions(name, OptProfileSelector::kMIN).empty() || d.empty() || d[0] >= 0) continue;
    if (std::count(d.begin(), d.end(), -1) > 1)
      fail("--maxBatch: input '", name, "' has other dynamic dims besides the batch; give its range with "
           "--minShapes/--optShapes/--maxShapes");
    Dims lo = d, hi = d;
    lo[0] = 1;
    hi[0] = o.max_batch;
    p.setDimensions(name, OptProfileSelector::kMIN, lo);
    p.setDimensions(name, OptProfileSelector::kOPT, hi);
    p.setDimensions(name, OptProfileSelector::kMAX, hi);
  }
}

void add_profiles(const Options& o, const Network& net, BuilderConfig& c) {
  size_t n = std::max({o.min_shapes.size(), o.opt_shapes.size(), o.max_shapes.size()});
  std::vector<OptimizationProfile> profiles;
  for (size_t i = 0; i < n; ++i) profiles.push_back(make_profile(o, i));
  if (n == 0 && !o.shapes.empty()) {  // --shapes alone: one static profile
    OptimizationProfile p;
    for (const auto& [name, d] : o.shapes)
      for (auto sel : {OptProfileSelector::kMIN, OptProfileSelector::kOPT, OptProfileSelector::kMAX})
        p.setDimensions(name, sel, d);
    profiles.push_back(p);
  }
  if (o.max_batch) {
    if (profiles.empty()) profiles.emplace_back();
    map_max_batch(o, net, profiles[0]);
  }
  for (const auto& p : profiles)
    if (c.addOptimizationProfile(p) < 0) fail("invalid optimization profile ", c.getNbOptimizationProfiles());
}

void configure(const Options& o, const Network& net, BuilderConfig& c, bool reference) {
  add_profiles(o, net, c);
  // --backend: auto picks CUDA when a GPU is usable (else the builder says why it builds for the
  // CPU); the --validate reference is always the CPU backend.
  c.setBackend(reference            ? BackendKind::kCPU
               : o.backend == "cpu"  ? BackendKind::kCPU
               : o.backend == "cuda" ? BackendKind::kCUDA
                                     : BackendKind::kAUTO);
  if (reference) {
    c.setBuilderOptimizationLevel(0);
    return;
  }
  if (o.fp16 || o.best) c.setFlag(BuilderFlag::kFP16);
  if (o.bf16 || o.best) c.setFlag(BuilderFlag::kBF16);
  if (o.int8 || o.best) c.setFlag(BuilderFlag::kINT8);
  if (o.no_tf32) c.clearFlag(BuilderFlag::kTF32);
  if (o.workspace_bytes) c.setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, o.workspace_bytes);
  if (o.builder_opt_level >= 0) c.setBuilderOptimizationLevel(o.builder_opt_level);
  if (o.avg_timing > 0) c.setAvgTimingIterations(o.avg_timing);
  if (o.tactic_sources_given) c.setTacticSources(o.tactic_sources);
  if (o.no_builder_cache) {
    c.setFlag(BuilderFlag::kDISABLE_TIMING_CACHE);
    if (!o.timing_cache.empty()) warning("--noBuilderCache: the timing cache '" + o.timing_cache + "' is neither read nor written");
  }
  if (!o.timing_cache.empty() && !o.no_builder_cache) {
    c.setTimingCachePath(o.timing_cache);
    info("Timing cache: '" + o.timing_cache + "' (read before tactic timing, written back after the build)");
  }
}

// --layerPrecisions, --layerOutputTypes, --precisionConstraints, --int8Tolerance. The builder
// checks the names against the network's layers and the types against the flags.
void set_layer_precisions(const Options& o, Network& net, BuilderConfig& c) {
  auto type = [](const std::string& t) {
    return t == "fp32" ? TensorType::kFLOAT : t == "fp16" ? TensorType::kHALF : TensorType::kINT8;
  };
  for (const auto& [name, t] : o.layer_precisions) net.setLayerPrecision(name, type(t));
  for (const auto& [name, t] : o.layer_output_types) net.setLayerOutputType(name, type(t));
  if (o.precision_constraints == "obey") c.setFlag(BuilderFlag::kOBEY_PRECISION_CONSTRAINTS);
  if (o.precision_constraints == "prefer") c.setFlag(BuilderFlag::kPREFER_PRECISION_CONSTRAINTS);
  c.setInt8Tolerance(o.int8_tolerance);
}

std::unique_ptr<Network> parse(const Options& o, Builder& b, CliLogger& logger) {
  if (access(o.onnx.c_str(), R_OK) != 0)
    fail("cannot read model '", o.onnx, "': ", std::strerror(errno));
  auto net = b.createNetwork();
  OnnxParser parser(*net, logger);
  if (!parser.parseFromFile(o.onnx)) {
    std::vector<std::string> errs;
    for (int i = 0; i < parser.getNbErrors(); ++i) {
      const ParserError& e = parser.getError(i);
      errs.push_back(e.node.empty() ? e.message : "node '" + e.node + "': " + e.message);
    }
    logger.take_errors();
    fail("cannot parse '", o.onnx, "': ", join(errs, "; "));
  }
  check_names(*net, o.shapes, "--shapes");
  for (const auto* v : {&o.min_shapes, &o.opt_shapes, &o.max_shapes})
    for (const ShapeMap& m : *v) check_names(*net, m, "--minShapes/--optShapes/--maxShapes");
  ShapeMap li;
  for (const auto& [name, file] : o.load_inputs) li[name] = {};
  check_names(*net, li, "--loadInputs");
  return net;
}

}  // namespace

std::vector<uint8_t> build_engine(const Options& o, CliLogger& logger, bool reference) {
  auto t0 = std::chrono::steady_clock::now();
  Builder builder(logger);
  auto net = parse(o, builder, logger);
  if (!reference)
    info("Parsed '" + o.onnx + "': " + std::to_string(net->getNbLayers()) + " layers, " +
         std::to_string(net->getNbInputs()) + " inputs, " + std::to_string(net->getNbOutputs()) + " outputs");
  auto config = builder.createBuilderConfig();
  configure(o, *net, *config, reference);
  std::unique_ptr<CliCalibrator> calib;
  if (!reference) calib = make_calibrator(o, *net, *config);
  if (!reference) set_layer_precisions(o, *net, *config);
  if (calib) config->setInt8Calibrator(calib.get());
  CliProgress progress;
  if (!reference) config->setProgressMonitor(&progress);
  auto bytes = builder.buildSerializedNetwork(*net, *config);
  if (bytes.empty()) logger.fail_api(reference ? "cannot build the --validate reference engine" : "engine build failed");
  if (calib) calib->save();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!reference) {
    char line[128];
    std::snprintf(line, sizeof line, "Engine built in %.3f sec; engine size %zu bytes (%.3f MiB)", s, bytes.size(),
                  bytes.size() / 1048576.0);
    info(line);
  }
  return bytes;
}

namespace {

std::string folder_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// A file with no name in `folder` (Linux's O_TMPFILE): until it is linked in, a crash or a
// SIGKILL leaves nothing behind. -1 where the kernel or the filesystem cannot, or where
// /proc/self/fd (needed to link it without privileges) is missing: callers fall back to mkstemp.
int open_unnamed(const std::string& folder) {
#ifdef O_TMPFILE
  static const bool proc_fd = access("/proc/self/fd", X_OK) == 0;
  if (proc_fd) return ::open(folder.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
#endif
  errno = EOPNOTSUPP;
  return -1;
}

// 0, or the errno of the failed write/fsync. fsync: a filesystem that reports a full disk only
// when it writes the data back must report it before the file gets its name.
int write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  for (size_t left = size; left > 0;) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    p += n;
    left -= static_cast<size_t>(n);
  }
  fchmod(fd, 0644);
  return fsync(fd) == 0 || errno == EINVAL ? 0 : errno;  // EINVAL: a filesystem without fsync
}

// Gives the unnamed file `fd` the name `path`, atomically: linked straight in when nothing is
// there; else linked under a temporary name and renamed over `path` (link cannot replace).
// 0, or the errno of the step that failed (nothing is left behind).
int link_unnamed(int fd, const std::string& path) {
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) return 0;
  if (errno != EEXIST) return errno;
  for (unsigned attempt = 0; attempt < 100; ++attempt) {
    std::string tmp = path + ".kiln-" + std::to_string(getpid()) + "-" + std::to_string(attempt);
    if (linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      if (errno == EEXIST) continue;
      return errno;
    }
    if (std::rename(tmp.c_str(), path.c_str()) == 0) return 0;
    int e = errno;
    unlink(tmp.c_str());
    return e;
  }
  return EEXIST;
}

}  // namespace

void check_writable(const std::string& path, const std::string& what) {
  int fd = open_unnamed(folder_of(path));
  if (fd >= 0) {
    close(fd);
    return;
  }
  std::string tmp = path + ".kiln-XXXXXX";
  fd = mkstemp(tmp.data());
  if (fd < 0) fail("cannot write ", what, " '", path, "': ", std::strerror(errno));
  close(fd);
  std::remove(tmp.c_str());
}

void write_file_atomic(const std::string& path, const void* data, size_t size, const std::string& what) {
  int fd = open_unnamed(folder_of(path));
  if (fd >= 0) {
    int e = write_all(fd, data, size);
    if (e == 0) e = link_unnamed(fd, path);
    close(fd);
    if (e != 0) fail("cannot write ", what, " '", path, "': ", std::strerror(e));
    return;
  }
  // No O_TMPFILE here: a named temporary file next to the target, renamed over it when complete
  // (a SIGKILL while writing leaves the temporary file, never a partial target).
  std::string tmp = path + ".kiln-XXXXXX";
  fd = mkstemp(tmp.data());
  if (fd < 0) fail("cannot write ", what, " '", path, "': ", std::strerror(errno));
  int e = write_all(fd, data, size);
  if (close(fd) != 0 && e == 0) e = errno;
  if (e == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) e = errno;
  if (e != 0) {
    std::remove(tmp.c_str());
    fail("cannot write ", what, " '", path, "': ", std::strerror(e));
  }
}

}  // namespace kiln::cli
