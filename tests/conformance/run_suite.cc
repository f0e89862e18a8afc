// Data-driven runner for ONNX backend test suites laid out as <case>/model.onnx plus
// <case>/test_data_set_N/{input,output}_K.pb. Each case runs on the CPU backend in a forked
// child with a time limit, so one bad case is reported with its reason, never a crash or hang
// of the whole suite. Prints one summary line:
//   <name>: P passed, F failed, U unsupported of N
// With --via-engine=cpu|cuda, each case goes through the public API instead: build an engine
// for the case's shapes, serialize, reload, run (on the GPU for cuda).
// With --expected, fails (exit 1) if any listed case no longer passes and prints cases that
// newly pass so the list can grow.
#include <dirent.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "backends/cpu/executor.h"
#include "core/log.h"
#include "kiln/kiln.h"
#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#endif
#include "onnx/importer.h"
#include "onnx/tensor_decode.h"

using namespace kiln;

namespace {

struct Options {
  std::string suite, name = "conformance", expected, write_passing, filter, log;
  std::string metric = "allclose";  // or rel_l2
  double rtol = 1e-3, atol = 1e-7, rel_l2 = 1e-4;
  int jobs = 2, timeout_s = 120;
  std::string via;  // "" = the CPU executor directly; "cpu" or "cuda" = through a built engine
  std::string precision = "fp32";  // engines: fp32 (TF32 off) or fp16
};

enum class Outcome { kPass, kFail, kUnsupported };
struct Result { Outcome outcome; std::string reason; };

std::vector<std::string> list_dir(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind(prefix, 0) == 0 && n != "." && n != "..") out.push_back(n);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool file_exists(const std::string& p) { return access(p.c_str(), R_OK) == 0; }

bool is_unsupported(const std::string& msg) {
  return msg.find("unsupported") != std::string::npos || msg.find("not supported") != std::string::npos;
}

// numpy.testing.assert_allclose semantics; NaN matches NaN. Elements that `defined` marks false
// (see defined_cast_elements) are not compared.
Status compare_allclose(const Tensor& got, const Tensor& want, const Options& o, const std::string& what,
                        const std::vector<bool>& defined = {}) {
  for (int64_t i = 0; i < want.numel(); ++i) {
    if (!defined.empty() && !defined[i]) continue;
    double a = got.get_as_double(i), b = want.get_as_double(i);
    if (std::isnan(a) && std::isnan(b)) continue;
    if (a == b) continue;  // covers equal infinities
    if (!(std::fabs(a - b) <= o.atol + o.rtol * std::fabs(b)))
      return err(what, " element ", i, ": got ", a, ", expected ", b);
  }
  return Status::ok();
}

std::string fmt_sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

std::string g_details;  // per case (each runs in its own child): measured errors, logged with PASS

Status compare_rel_l2(const Tensor& got, const Tensor& want, const Options& o, const std::string& what) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    double a = got.get_as_double(i), b = want.get_as_double(i);
    num += (a - b) * (a - b);
    den += b * b;
  }
  if (den == 0) return err(what, ": the reference output is all zeros, so a relative error cannot be measured");
  double rel = std::sqrt(num / den);
  g_details += what + ": rel L2 " + fmt_sci(rel) + "; ";
  if (!(rel <= o.rel_l2)) return err(what, ": relative L2 error ", rel, " > ", o.rel_l2);
  return Status::ok();
}

// Cast from a float type to an integer type is "undefined if OOR (out of range)" in every opset of
// Cast and CastLike: an element whose input is NaN, infinite, or outside the target's range after
// truncation has no defined result, and the suite's expected value there is whatever the
// generator's library did (ml_dtypes 0.5 wrapped int4 like an integer narrowing, 0.7 writes 0).
// For a model that is only Cast/CastLike from a float input to an integer output, those elements
// are not compared; every defined element still is. Returns the mask (empty: compare all).
std::vector<bool> defined_cast_elements(const Graph& g, const std::map<std::string, Tensor>& inputs,
                                        DataType out) {
  if (g.inputs.empty() || !dtype_is_float(g.inputs[0]->dtype) || dtype_is_float(out) || out == DataType::kBool)
    return {};
  bool is_int = dtype_is_signed_int(out) || dtype_is_unsigned_int(out) || out == DataType::kInt4 ||
                out == DataType::kUInt4 || out == DataType::kInt2 || out == DataType::kUInt2;
  if (!is_int || g.nodes().empty()) return {};
  for (const auto& n : g.nodes())
    if (n->op_type != "Cast" && n->op_type != "CastLike") return {};
  auto it = inputs.find(g.inputs[0]->name);
  if (it == inputs.end()) return {};
  bool is_signed = dtype_is_signed_int(out) || out == DataType::kInt4 || out == DataType::kInt2;
  double bits = static_cast<double>(dtype_bits(out));
  double lo = is_signed ? -std::ldexp(1.0, bits - 1) : 0, hi = std::ldexp(1.0, bits - (is_signed ? 1 : 0)) - 1;
  const Tensor& x = it->second;
  std::vector<bool> mask(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) {
    double v = std::trunc(x.get_as_double(i));
    mask[i] = std::isfinite(v) && v >= lo && v <= hi;
  }
  return mask;
}

// ONNX 1.12's test data stores bfloat16 tensors as uint16 (same bits); read them as declared.
Tensor as_declared(Tensor t, DataType declared) {
  if (declared != DataType::kBFloat16 || t.dtype() != DataType::kUInt16) return t;
  Tensor r = Tensor::zeros(DataType::kBFloat16, t.dims()).value();
  std::memcpy(r.mutable_raw(), t.raw(), t.nbytes());
  return r;
}

struct ErrorLogger : Logger {
  std::string errors;
  void log(Severity s, const char* m) noexcept override {
    if (s <= Severity::kERROR) errors += (errors.empty() ? "" : "; ") + std::string(m);
  }
};

// Device (or host) buffers for one engine run.
struct Buffer {
  void* ptr = nullptr;
  bool device = false;
  explicit Buffer(size_t n, bool on_device) : device(on_device) {
#ifdef KILN_WITH_CUDA
    if (device) { if (cudaMalloc(&ptr, n ? n : 1) != cudaSuccess) ptr = nullptr; return; }
#endif
    ptr = std::malloc(n ? n : 1);
  }
  ~Buffer() {
#ifdef KILN_WITH_CUDA
    if (device) { cudaFree(ptr); return; }
#endif
    std::free(ptr);
  }
  void write(const void* src, size_t n) {
#ifdef KILN_WITH_CUDA
    if (device) { cudaMemcpy(ptr, src, n, cudaMemcpyHostToDevice); return; }
#endif
    std::memcpy(ptr, src, n);
  }
  void read(void* dst, size_t n) const {
#ifdef KILN_WITH_CUDA
    if (device) { cudaMemcpy(dst, ptr, n, cudaMemcpyDeviceToHost); return; }
#endif
    std::memcpy(dst, ptr, n);
  }
};

// Host memory for outputs whose shape only the run decides (CPU engines).
// Memory for outputs whose shape only the run decides: host memory for CPU engines, device
// memory for CUDA engines (read back after the run).
struct RunOutputAllocator : OutputAllocator {
  explicit RunOutputAllocator(bool on_device) : device(on_device) {}
  bool device;
  std::unique_ptr<Buffer> buffer;
  uint64_t size = 0;
  Dims dims;
  void* reallocateOutput(const char*, void*, uint64_t n, uint64_t) noexcept override {
    buffer = std::make_unique<Buffer>(n, device);
    size = n;
    return buffer->ptr;
  }
  void notifyShape(const char*, const Dims& d) noexcept override { dims = d; }
};

// Builds an engine for the case's input shapes through the public API, serializes and reloads
// it, and runs it: the path a user's engine takes.
Expected<std::vector<Tensor>> run_via_engine(const std::string& model, const std::vector<std::pair<std::string, Tensor>>& inputs,
                                             const std::vector<std::string>& output_names, const Options& o) {
  ErrorLogger log;
  Builder builder(log);
  auto network = builder.createNetwork();
  OnnxParser parser(*network, log);
  if (!parser.parseFromFile(model)) return Status::error(log.errors);
  auto config = builder.createBuilderConfig();
  config->setBackend(o.via == "cuda" ? BackendKind::kCUDA : BackendKind::kCPU);
  config->clearFlag(BuilderFlag::kTF32);
  if (o.precision == "fp16") config->setFlag(BuilderFlag::kFP16);
  OptimizationProfile profile;
  for (const auto& [name, t] : inputs)
    for (auto which : {OptProfileSelector::kMIN, OptProfileSelector::kOPT, OptProfileSelector::kMAX})
      profile.setDimensions(name, which, t.dims());
  config->addOptimizationProfile(profile);
  auto plan = builder.buildSerializedNetwork(*network, *config);
  if (plan.empty()) return Status::error(log.errors);
  Runtime runtime(log);
  auto engine = runtime.deserialize(plan.data(), plan.size());
  if (!engine) return Status::error(log.errors);
  auto ctx = engine->createExecutionContext();
  if (!ctx) return Status::error(log.errors);
  bool device = o.via == "cuda";
  std::vector<std::unique_ptr<Buffer>> bufs;
  for (const auto& [name, t] : inputs) {
    if (!ctx->setInputShape(name, t.dims())) return Status::error(log.errors);
    bufs.push_back(std::make_unique<Buffer>(t.nbytes(), device));
    bufs.back()->write(t.raw(), t.nbytes());
    ctx->setTensorAddress(name, bufs.back()->ptr);
  }
  std::vector<Tensor> outs;
  std::vector<Buffer*> out_bufs;
  std::map<size_t, std::unique_ptr<RunOutputAllocator>> allocators;  // by output index
  for (const auto& name : output_names) {
    Dims d = ctx->getTensorShape(name);
    bool dynamic = false;
    for (int64_t x : d) dynamic = dynamic || x < 0;
    if (dynamic) {
      auto a = std::make_unique<RunOutputAllocator>(device);
      ctx->setOutputAllocator(name, a.get());
      allocators[outs.size()] = std::move(a);
      outs.emplace_back();
      out_bufs.push_back(nullptr);
      continue;
    }
    KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(static_cast<DataType>(engine->getTensorDataType(name)), d));
    bufs.push_back(std::make_unique<Buffer>(t.nbytes(), device));
    ctx->setTensorAddress(name, bufs.back()->ptr);
    out_bufs.push_back(bufs.back().get());
    outs.push_back(std::move(t));
  }
  if (!ctx->execute()) return Status::error(log.errors);
#ifdef KILN_WITH_CUDA
  if (device && cudaDeviceSynchronize() != cudaSuccess) return err("CUDA error after execute");
#endif
  for (size_t k = 0; k < outs.size(); ++k) {
    if (auto a = allocators.find(k); a != allocators.end()) {
      DataType t = static_cast<DataType>(engine->getTensorDataType(output_names[k]));
      KILN_ASSIGN_OR_RETURN(outs[k], Tensor::zeros(t, a->second->dims));
      if (outs[k].nbytes() > a->second->size) return err("output '", output_names[k], "' exceeds its allocation");
      if (outs[k].nbytes()) a->second->buffer->read(outs[k].mutable_raw(), outs[k].nbytes());
      continue;
    }
    out_bufs[k]->read(outs[k].mutable_raw(), outs[k].nbytes());
  }
  return outs;
}

Status run_case(const std::string& dir, const Options& o) {
  auto g = onnx_import::import_file(dir + "/model.onnx");
  if (!g) return g.status();
  const Graph& graph = **g;
  auto ex = cpu::Executor::create(graph);
  if (!ex) return ex.status();
  auto sets = list_dir(dir, "test_data_set_");
  if (sets.empty()) return err("no test_data_set_* in ", dir);
  for (const auto& set : sets) {
    std::string sd = dir + "/" + set;
    std::map<std::string, Tensor> inputs;
    for (size_t k = 0; file_exists(sd + "/input_" + std::to_string(k) + ".pb"); ++k) {
      if (k >= graph.inputs.size()) return err(set, ": more input files than graph inputs");
      KILN_ASSIGN_OR_RETURN(Tensor t, onnx_import::load_tensor_file(sd + "/input_" + std::to_string(k) + ".pb"));
      inputs[graph.inputs[k]->name] = as_declared(std::move(t), graph.inputs[k]->dtype);
    }
    Expected<std::vector<Tensor>> outs = Status::error("not run");
    if (o.via.empty()) {
      outs = (*ex)->run(inputs);
    } else {
      std::vector<std::pair<std::string, Tensor>> ordered;
      for (const Value* in : graph.inputs)
        if (inputs.count(in->name)) ordered.push_back({in->name, inputs.at(in->name)});
      std::vector<std::string> names;
      for (const Value* out : graph.outputs) names.push_back(out->name);
      outs = run_via_engine(dir + "/model.onnx", ordered, names, o);
    }
    if (!outs) return outs.status();
    for (size_t k = 0; k < graph.outputs.size(); ++k) {
      std::string f = sd + "/output_" + std::to_string(k) + ".pb";
      if (!file_exists(f)) continue;
      KILN_ASSIGN_OR_RETURN(Tensor want, onnx_import::load_tensor_file(f));
      want = as_declared(std::move(want), graph.outputs[k]->dtype);
      const Tensor& got = (*outs)[k];
      std::string what = set + " output '" + graph.outputs[k]->name + "'";
      if (got.dtype() != want.dtype())
        return err(what, ": got type ", dtype_name(got.dtype()), ", expected ", dtype_name(want.dtype()));
      if (got.dims() != want.dims())
        return err(what, ": got shape ", dims_to_string(got.dims()), ", expected ", dims_to_string(want.dims()));
      std::vector<bool> defined = defined_cast_elements(graph, inputs, want.dtype());
      if (!defined.empty() && defined.size() != static_cast<size_t>(want.numel())) defined.clear();
      if (size_t skipped = std::count(defined.begin(), defined.end(), false))
        g_details += what + ": " + std::to_string(skipped) + " out-of-range elements not compared (undefined); ";
      KILN_RETURN_IF_ERROR(o.metric == "rel_l2" ? compare_rel_l2(got, want, o, what)
                                                : compare_allclose(got, want, o, what, defined));
    }
  }
  return Status::ok();
}

// Cases known to fail on values by design, and why; a failing case's reason gets the note.
const char* known_failure_note(const std::string& name) {
  static const std::pair<std::regex, const char*> kNotes[] = {
      {std::regex("test_bernoulli.*|test_random_.*"),
       "known: expected values are numpy.random draws; kiln's own generator gives other values "
       "(shape and type were checked)"},
      {std::regex("test_training_dropout.*"),
       "known: the expected mask is a numpy.random draw; kiln's own generator gives another one"},
  };
  for (const auto& [re, note] : kNotes)
    if (std::regex_match(name, re)) return note;
  return nullptr;
}

// Runs one case in a child; the child writes "P|F|U<reason>" to a pipe.
struct Child { pid_t pid; int fd; std::string name; std::string buf; std::chrono::steady_clock::time_point start; };

Child spawn(const std::string& suite, const std::string& name, const Options& o) {
  int p[2];
  if (pipe(p) != 0) { perror("pipe"); exit(2); }
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    set_log_level(Severity::kError);  // a case's warnings (e.g. a newer opset) would drown the summary
    Status s = run_case(suite + "/" + name, o);
    std::string msg = s ? "P" + g_details : (is_unsupported(s.message()) ? "U" : "F") + s.message();
    (void)!write(p[1], msg.data(), msg.size());
    _exit(0);
  }
  close(p[1]);
  return {pid, p[0], name, "", std::chrono::steady_clock::now()};
}

Result finish(Child& c, bool timed_out) {
  int status = 0;
  if (timed_out) kill(c.pid, SIGKILL);
  waitpid(c.pid, &status, 0);
  close(c.fd);
  if (timed_out) return {Outcome::kFail, "timed out"};
  if (WIFSIGNALED(status)) return {Outcome::kFail, std::string("crashed: ") + strsignal(WTERMSIG(status))};
  if (c.buf.empty()) return {Outcome::kFail, "child exited without a result"};
  char k = c.buf[0];
  std::string reason = c.buf.substr(1);
  std::replace(reason.begin(), reason.end(), '\n', ' ');
  if (k == 'F')
    if (const char* note = known_failure_note(c.name)) reason += " [" + std::string(note) + "]";
  return {k == 'P' ? Outcome::kPass : k == 'U' ? Outcome::kUnsupported : Outcome::kFail, reason};
}

std::map<std::string, Result> run_all(const std::vector<std::string>& cases, const Options& o) {
  std::map<std::string, Result> results;
  std::vector<Child> running;
  size_t next = 0;
  while (next < cases.size() || !running.empty()) {
    while (next < cases.size() && running.size() < static_cast<size_t>(o.jobs)) running.push_back(spawn(o.suite, cases[next++], o));
    std::vector<pollfd> fds;
    for (auto& c : running) fds.push_back({c.fd, POLLIN, 0});
    poll(fds.data(), fds.size(), 200);
    for (size_t i = 0; i < running.size();) {
      Child& c = running[i];
      bool done = false;
      if (fds[i].revents & (POLLIN | POLLHUP)) {
        char buf[4096];
        ssize_t n = read(c.fd, buf, sizeof buf);
        if (n > 0) c.buf.append(buf, n);
        else done = true;
      }
      bool late = std::chrono::steady_clock::now() - c.start > std::chrono::seconds(o.timeout_s);
      if (done || late) {
        results[c.name] = finish(c, late && !done);
        fds.erase(fds.begin() + i);
        running.erase(running.begin() + i);
      } else {
        ++i;
      }
    }
  }
  return results;
}

std::set<std::string> read_list(const std::string& path) {
  std::set<std::string> s;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') s.insert(line);
  return s;
}

bool parse_flag(const std::string& arg, const char* name, std::string& out) {
  std::string p = std::string("--") + name + "=";
  if (arg.rfind(p, 0) != 0) return false;
  out = arg.substr(p.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], v;
    if (parse_flag(a, "suite", o.suite) || parse_flag(a, "name", o.name) || parse_flag(a, "expected", o.expected) ||
        parse_flag(a, "write-passing", o.write_passing) || parse_flag(a, "filter", o.filter) ||
        parse_flag(a, "log", o.log) || parse_flag(a, "metric", o.metric) || parse_flag(a, "via-engine", o.via) ||
        parse_flag(a, "precision", o.precision)) continue;
    if (parse_flag(a, "jobs", v)) { o.jobs = std::max(1, std::stoi(v)); continue; }
    if (parse_flag(a, "timeout", v)) { o.timeout_s = std::stoi(v); continue; }
    if (parse_flag(a, "rel-l2", v)) { o.rel_l2 = std::stod(v); continue; }
    std::fprintf(stderr, "run_suite: unknown argument '%s'\n", a.c_str());
    return 2;
  }
  if (o.suite.empty()) { std::fprintf(stderr, "run_suite: --suite=DIR is required\n"); return 2; }
  if (o.precision != "fp32" && (o.precision != "fp16" || o.via.empty())) {
    std::fprintf(stderr, "run_suite: --precision takes fp32, or fp16 with --via-engine\n");
    return 2;
  }
  if (!o.via.empty() && o.via != "cpu" && o.via != "cuda") {
    std::fprintf(stderr, "run_suite: --via-engine takes cpu or cuda\n");
    return 2;
  }
  auto cases = list_dir(o.suite, "test_");
  if (!o.filter.empty()) {
    std::regex re(o.filter);
    cases.erase(std::remove_if(cases.begin(), cases.end(), [&](const std::string& c) { return !std::regex_search(c, re); }), cases.end());
  }
  if (cases.empty()) { std::fprintf(stderr, "run_suite: no test_* cases in '%s'\n", o.suite.c_str()); return 2; }

  auto results = run_all(cases, o);
  int pass = 0, fail = 0, unsup = 0;
  FILE* log = o.log.empty() ? nullptr : std::fopen(o.log.c_str(), "w");
  for (const auto& [name, r] : results) {
    const char* tag = r.outcome == Outcome::kPass ? "PASS" : r.outcome == Outcome::kFail ? "FAIL" : "UNSUPPORTED";
    (r.outcome == Outcome::kPass ? pass : r.outcome == Outcome::kFail ? fail : unsup)++;
    if (log) std::fprintf(log, "%s %s %s\n", tag, name.c_str(), r.reason.c_str());
    if (o.expected.empty() && (r.outcome != Outcome::kPass || !r.reason.empty()))
      std::printf("%s %s: %s\n", tag, name.c_str(), r.reason.c_str());
  }
  if (!o.write_passing.empty()) {
    std::ofstream out(o.write_passing);
    out << "# cases of " << o.name << " expected to pass on the CPU backend (one per line)\n";
    for (const auto& [name, r] : results) if (r.outcome == Outcome::kPass) out << name << "\n";
  }
  int rc = 0;
  if (!o.expected.empty()) {
    auto expected = read_list(o.expected);
    for (const auto& e : expected) {
      auto it = results.find(e);
      if (it == results.end()) continue;  // filtered out
      if (it->second.outcome != Outcome::kPass) {
        std::printf("REGRESSION %s: %s\n", e.c_str(), it->second.reason.c_str());
        rc = 1;
      }
    }
    for (const auto& [name, r] : results)
      if (r.outcome == Outcome::kPass && !expected.count(name)) std::printf("NEWLY PASSING %s\n", name.c_str());
  }
  std::printf("%s: %d passed, %d failed, %d unsupported of %zu\n", o.name.c_str(), pass, fail, unsup, cases.size());
  if (log) {  // the summary closes the log too, so scripts can show it without CTest's -V
    std::fprintf(log, "%s: %d passed, %d failed, %d unsupported of %zu\n", o.name.c_str(), pass, fail, unsup, cases.size());
    std::fclose(log);
  }
  return rc;
}
