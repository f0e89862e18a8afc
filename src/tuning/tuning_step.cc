#include "tuning/tuning_step.h"

#include <chrono>
#include <cstdio>
#include <mutex>

#include <unistd.h>

#include "core/log.h"
#include "engine/host_layer.h"

namespace kiln {

struct TimingCache::Impl {
  mutable std::mutex mu;  // a cache shared by builds on several threads
  tuning::TimingCache cache;
};

TimingCache::TimingCache() : impl_(std::make_unique<Impl>()) {}
TimingCache::~TimingCache() = default;
std::vector<uint8_t> TimingCache::serialize() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::string s = impl_->cache.serialize();
  return std::vector<uint8_t>(s.begin(), s.end());
}
int TimingCache::combine(const TimingCache& other) {
  if (&other == this) return 0;
  std::scoped_lock lock(impl_->mu, other.impl_->mu);
  return impl_->cache.merge(other.impl_->cache);
}
void TimingCache::reset() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->cache.reset();
}
size_t TimingCache::size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->cache.size();
}

std::shared_ptr<TimingCache> BuilderConfig::createTimingCache(const void* blob, size_t size, std::string* error) const {
  auto c = std::make_shared<TimingCache>();
  if (!blob || size == 0) return c;
  auto parsed = tuning::TimingCache::parse(std::string_view(static_cast<const char*>(blob), size), "timing cache");
  if (!parsed) {
    if (error) *error = parsed.status().message();
    return nullptr;
  }
  c->impl().cache = std::move(parsed).value();
  return c;
}

namespace tuning {

namespace {

std::string ms_text(double ms) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4f ms", ms);
  return b;
}

// Entries of the cache for devices other than this one: said once, used only where keys match.
void note_other_devices(const TimingCache& cache, const std::string& source, const std::string& device_key) {
  const size_t other = cache.size() - cache.size_for_device(device_key);
  if (other)
    log_warning("timing cache " + source + ": " + std::to_string(other) + " of " + std::to_string(cache.size()) +
                " entries were timed on another device or library version (used only where the keys match)");
}

}  // namespace

Status run_tuning_step(const Graph& g, const BackendProvider& backend, const DeviceRecord& device,
                       const ValueShapes& opt, const BackendOptions& options, const BuilderConfig& c,
                       std::vector<std::string>& tactics, std::vector<LayerTuning>& layers) {
  layers.assign(g.nodes().size(), LayerTuning{});
  const int level = c.getBuilderOptimizationLevel();
  using Tuning = BackendProvider::Tuning;
  const bool asked = c.builderOptimizationLevelSet() || c.getTacticSources() != kAllTacticSources ||
                     (!c.getFlag(BuilderFlag::kDISABLE_TIMING_CACHE) && (!c.getTimingCachePath().empty() || c.getTimingCache()));
  const bool tunes = backend.tuning() == Tuning::kAlways || c.builderOptimizationLevelSet() ||
                     (backend.tuning() == Tuning::kWhenAsked && asked);
  if (!tunes) {
    if (backend.tuning() == Tuning::kExplicitLevel &&
        (c.getTacticSources() != kAllTacticSources || !c.getTimingCachePath().empty()))
      log_warning(std::string("the ") + backend.name() + " backend's tactic timing awaits its check on the device: it is " +
                  "used only with an explicit --builderOptimizationLevel (1..5); --tacticSources and the timing cache " +
                  "change nothing in this build");
    return Status::ok();
  }
  // Level 0 with every source: the backend's heuristic picks stand, nothing is listed or timed.
  if (level == 0 && c.getTacticSources() == kAllTacticSources) {
    log_info("builder optimization level 0: no tactic timing (the backend's heuristic picks)");
    return Status::ok();
  }
  KILN_ASSIGN_OR_RETURN(auto timer, backend.make_tactic_timer(g, opt, options, engine::host_layer(), tactics));
  if (!timer) return Status::ok();
  TunerOptions o;
  o.time = level > 0;
  o.avg_runs = c.getAvgTimingIterations();
  o.sources = c.getTacticSources();
  o.device_key = device.tuning_key.empty() ? device.name : device.tuning_key;
  const bool use_cache = !c.getFlag(BuilderFlag::kDISABLE_TIMING_CACHE);
  const std::string& path = c.getTimingCachePath();
  TimingCache cache;
  bool file_current = false;  // the file exists, reads back whole, and holds every entry this build has
  if (use_cache && !path.empty()) {
    std::string warning;
    cache = read_cache_file(path, &warning);
    if (!warning.empty()) log_warning(warning);
    else if (cache.size()) note_other_devices(cache, "'" + path + "'", o.device_key);
    file_current = warning.empty() && access(path.c_str(), F_OK) == 0;
  }
  const size_t file_entries = cache.size();
  std::shared_ptr<kiln::TimingCache> api_cache = use_cache ? c.getTimingCache() : nullptr;
  if (api_cache) {
    std::lock_guard<std::mutex> lock(api_cache->impl().mu);
    cache.merge(api_cache->impl().cache);
  }
  ProgressMonitor* pm = c.getProgressMonitor();
  auto t0 = std::chrono::steady_clock::now();
  int total = 0;
  TuneProgress progress = [&](int done, int n) {
    if (pm && done == 1) pm->phaseStart("Tactic timing", nullptr, n);
    total = n;
    if (pm && !pm->stepComplete("Tactic timing", done - 1)) return false;
    return true;
  };
  KILN_ASSIGN_OR_RETURN(TuneResult r, tune(g, opt, *timer, o, use_cache ? &cache : nullptr, tactics, progress));
  if (pm && total) pm->phaseFinish("Tactic timing");
  layers = r.layers;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  char line[200];
  if (!o.time)
    std::snprintf(line, sizeof line, "builder optimization level 0: no tactic timing (%d layers with a choice keep the first candidate)",
                  r.tunable);
  else
    std::snprintf(line, sizeof line, "tactic timing: timed %d of %d layers (%d tactic times from the timing cache) in %.3f s",
                  r.timed, r.tunable, r.cache_hits, s);
  log_info(line);
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const LayerTuning& l = layers[i];
    if (l.candidates < 2 || l.ms < 0) continue;
    log_verbose(g.nodes()[i]->label() + ": tactic " + tactics[i] + " " + ms_text(l.ms) + "; runner-up " + l.runner_up + " " +
                ms_text(l.runner_up_ms) + (l.timed ? "" : " (timing cache)"));
  }
  if (!use_cache) return Status::ok();
  if (api_cache) {
    std::lock_guard<std::mutex> lock(api_cache->impl().mu);
    api_cache->impl().cache.merge(cache);
  }
  // Written back only when it gained entries or was missing or damaged: a warm build leaves it as is.
  if (!path.empty() && !(file_current && cache.size() == file_entries)) {
    Status w = write_cache_file(path, cache);
    if (!w) log_warning(w.message() + " (the engine is built; the next build times again)");
  }
  return Status::ok();
}

}  // namespace tuning
}  // namespace kiln
