#include "tuning/tuner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace kiln::tuning {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

template <class T, class F>
std::string list(const std::vector<T>& v, F item) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + item(v[i]);
  return s + "]";
}

std::string attribute(const AttrValue& a) {
  if (auto* i = std::get_if<int64_t>(&a)) return std::to_string(*i);
  if (auto* f = std::get_if<float>(&a)) return number(*f);
  if (auto* s = std::get_if<std::string>(&a)) return "\"" + *s + "\"";
  if (auto* is = std::get_if<std::vector<int64_t>>(&a)) return list(*is, [](int64_t x) { return std::to_string(x); });
  if (auto* fs = std::get_if<std::vector<float>>(&a)) return list(*fs, [](float x) { return number(x); });
  if (auto* ss = std::get_if<std::vector<std::string>>(&a)) return list(*ss, [](const std::string& x) { return "\"" + x + "\""; });
  if (auto* t = std::get_if<Tensor>(&a)) {  // small tensors of attributes (a Pointwise program's constants): the values count
    char h[20];
    std::snprintf(h, sizeof h, "%016" PRIx64, uint64_t(XXH64(t->raw(), t->nbytes(), 0)));
    return t->describe() + "#" + h;
  }
  return "<subgraph>";  // layers with subgraphs have no tactics to time
}

std::string value(const Value* v, const ValueShapes& shapes) {
  if (!v) return "_";
  auto d = shapes.dims.find(v);
  std::string dims = d != shapes.dims.end() ? dims_to_string(d->second) : v->shape.to_string();
  return std::string(dtype_name(v->dtype)) + dims + (v->initializer ? "c" : "");
}

// The median of a small sample (upper median for an even count: a real run's time).
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

std::string layer_signature(const Node& n, const ValueShapes& shapes) {
  std::string s = (n.domain.empty() ? std::string() : n.domain + ".") + n.op_type + " opset " + std::to_string(n.opset) + " (";
  for (size_t i = 0; i < n.inputs.size(); ++i) s += (i ? ", " : "") + value(n.inputs[i], shapes);
  s += ") -> (";
  for (size_t i = 0; i < n.outputs.size(); ++i) s += (i ? ", " : "") + value(n.outputs[i], shapes);
  s += ")";
  for (const auto& [k, a] : n.attrs) s += " " + k + "=" + attribute(a);
  return s;
}

Expected<TuneResult> tune(const Graph& g, const ValueShapes& shapes, TacticTimer& timer, const TunerOptions& o,
                          TimingCache* cache, std::vector<std::string>& tactics, const TuneProgress& progress) {
  const auto& nodes = g.nodes();
  TuneResult r;
  r.layers.resize(nodes.size());
  // Each node's enabled candidates, in the backend's order.
  std::vector<std::vector<std::string>> cands(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (tactics[i] == kHostFallbackTactic) continue;
    for (const TacticCandidate& c : timer.candidates(i))
      if (o.sources & c.source) cands[i].push_back(c.id);
    r.layers[i].candidates = static_cast<int>(cands[i].size());
    if (!cands[i].empty() && !o.time) tactics[i] = cands[i][0];  // level 0: the first enabled candidate
    if (cands[i].size() >= 2) ++r.tunable;
  }
  if (!o.time) return r;
  const int runs = std::max(1, o.avg_runs);
  int done = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (cands[i].size() < 2) {
      if (cands[i].size() == 1) tactics[i] = cands[i][0];
      continue;
    }
    const std::string sig = layer_signature(*nodes[i], shapes);
    const std::vector<TimingEntry>* known = cache ? cache->lookup(o.device_key, sig) : nullptr;
    std::vector<double> ms(cands[i].size());
    LayerTuning& lt = r.layers[i];
    for (size_t c = 0; c < cands[i].size(); ++c) {
      const std::string& id = cands[i][c];
      const TimingEntry* hit = nullptr;
      if (known)
        for (const TimingEntry& e : *known) if (e.tactic == id) hit = &e;
      if (hit) {
        ms[c] = hit->median_ms;
        ++r.cache_hits;
        continue;
      }
      for (int w = 0; w < o.warmup_runs; ++w) KILN_RETURN_IF_ERROR(timer.time_once(i, id).status());
      std::vector<double> sample;
      for (int k = 0; k < runs; ++k) {
        KILN_ASSIGN_OR_RETURN(double t, timer.time_once(i, id));
        sample.push_back(t);
      }
      ms[c] = median(sample);
      lt.timed = true;
      if (cache) KILN_RETURN_IF_ERROR(cache->record(o.device_key, sig, {id, ms[c], runs}));
    }
    if (lt.timed) ++r.timed;
    // The fastest; then the earliest candidate within the tie fraction of it.
    size_t best = 0;
    for (size_t c = 1; c < ms.size(); ++c) if (ms[c] < ms[best]) best = c;
    size_t pick = best;
    for (size_t c = 0; c < best; ++c)
      if (ms[c] <= ms[best] * (1 + o.tie_fraction)) { pick = c; break; }
    tactics[i] = cands[i][pick];
    lt.ms = ms[pick];
    lt.heuristic = cands[i][0];
    lt.heuristic_ms = ms[0];
    for (size_t c = 0; c < ms.size(); ++c)
      if (c != pick && (lt.runner_up.empty() || ms[c] < lt.runner_up_ms)) lt.runner_up = cands[i][c], lt.runner_up_ms = ms[c];
    ++done;
    if (progress && !progress(done, r.tunable)) return err("build cancelled by the progress monitor");
  }
  return r;
}

TimingCache read_cache_file(const std::string& path, std::string* warning) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    if (errno != ENOENT && warning) *warning = "cannot read timing cache '" + path + "': " + std::strerror(errno) + "; timing every layer";
    return {};
  }
  std::stringstream ss;
  ss << f.rdbuf();
  auto c = TimingCache::parse(ss.str(), path);
  if (!c) {
    if (warning) *warning = "timing cache ignored (" + c.status().message() + "): timing every layer; the file is rewritten at the end of the build";
    return {};
  }
  return std::move(c).value();
}

Status write_cache_file(const std::string& path, const TimingCache& cache) {
  TimingCache merged = cache;
  merged.merge(read_cache_file(path, nullptr));  // what another build wrote meanwhile (a damaged file: replaced)
  const std::string bytes = merged.serialize();
  std::string tmp = path + ".kiln-XXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0) return err("cannot write timing cache '", path, "': ", std::strerror(errno));
  size_t off = 0;
  int e = 0;
  while (off < bytes.size() && e == 0) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) e = n < 0 ? errno : EIO;
    else off += static_cast<size_t>(n);
  }
  if (e == 0) fchmod(fd, 0644);
  if (e == 0 && fsync(fd) != 0 && errno != EINVAL) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  if (e == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) e = errno;
  if (e != 0) {
    std::remove(tmp.c_str());
    return err("cannot write timing cache '", path, "': ", std::strerror(e));
  }
  return Status::ok();
}

}  // namespace kiln::tuning
