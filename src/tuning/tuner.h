// The tuner: times each layer's candidate tactics at the profile's opt shapes and keeps the
// fastest, with a timing cache in front of the clock (issue 15). The backend lists the candidates
// and times one run (TacticTimer, backends/registry.h); the tuner owns the policy:
//   - warm-up runs, then the median of `avg_runs` timed runs per tactic;
//   - the fastest wins; a candidate within 2% of the fastest that comes earlier in the backend's
//     list wins instead (a fixed order), so two builds on one device pick the same tactics;
//   - the cache is looked up before timing (key: the device key, the layer signature, the tactic
//     id); a layer whose every candidate is cached times nothing; what was timed is recorded.
// Levels: 0 times nothing (the backend's heuristic picks, first enabled candidate); 1..5 time.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "tuning/timing_cache.h"

namespace kiln::tuning {

// What a layer's tactic is known by across builds and models: op, attributes, input and output
// shapes, types and layouts (the layout is an attribute of the layouts' ops). Weights' values are
// not part of it, their shapes and types are.
std::string layer_signature(const Node& node, const ValueShapes& shapes);

struct TunerOptions {
  bool time = true;            // false: optimization level 0, or a backend that does not tune now
  int avg_runs = 8;            // timed runs per tactic (the median is kept)
  int warmup_runs = 2;         // untimed runs before them
  uint32_t sources = ~0u;      // TacticSource bits; a layer whose every candidate is left out keeps its pick
  std::string device_key;      // DeviceRecord::tuning_key
  double tie_fraction = 0.02;  // ties within 2% go to the earlier candidate
};

// One layer's outcome, for the engine's layer information and --verbose.
struct LayerTuning {
  int candidates = 0;     // enabled candidates (0: the layer has nothing to choose)
  bool timed = false;     // at least one candidate was timed in this build (else from the cache)
  double ms = -1;         // the chosen tactic's median (-1: not timed)
  std::string runner_up;  // the second fastest candidate, if any
  double runner_up_ms = -1;
  std::string heuristic;  // the backend's own pick (its first enabled candidate: what level 0 runs)
  double heuristic_ms = -1;
};

struct TuneResult {
  std::vector<LayerTuning> layers;  // per node
  int tunable = 0;                  // layers with two or more enabled candidates
  int timed = 0;                    // of those, layers that needed the clock (the rest: the cache)
  int cache_hits = 0;               // tactic timings read from the cache
};

// Called after each tunable layer: (layers done, tunable layers); false cancels the build.
using TuneProgress = std::function<bool(int done, int total)>;

// Picks a tactic for each node with candidates, writing it into `tactics` (which holds the
// backend's picks on entry). `cache` is read and added to (may be null: nothing cached).
Expected<TuneResult> tune(const Graph& g, const ValueShapes& shapes, TacticTimer& timer, const TunerOptions& options,
                          TimingCache* cache, std::vector<std::string>& tactics, const TuneProgress& progress = nullptr);

// Reads a timing cache file: a missing file is an empty cache; an unreadable, corrupted or
// truncated one is an empty cache and `warning` says why (the build re-times; never a wrong engine).
TimingCache read_cache_file(const std::string& path, std::string* warning);
// Merges `cache` into what the file holds now (another build may have written it meanwhile) and
// writes the result atomically (a temporary file in the same folder, renamed over it). An error
// names the path; the caller warns and goes on.
Status write_cache_file(const std::string& path, const TimingCache& cache);

}  // namespace kiln::tuning
