// The timing cache: how long each tactic took on each layer, kept across builds and models, so a
// build on a warm cache times nothing (issue 15). TensorRT's semantics: an entry counts only for
// the device and library versions that measured it (the device key), and a layer is known by its
// signature (op, attributes, shapes, types, layouts: whatever the tuner folds into the string).
//
// The file is text, one entry per line, so it can be read, diffed and merged by hand:
//
//   kiln-timing-cache 1
//   <device key> \t <layer signature> \t <tactic id> \t <median ms> \t <timed runs>
//   ...
//   end <entries> <XXH64 of every byte before this line, 16 hex digits>
//
// Fields escape '\\', tab and newline as \\, \t, \n. The end line catches a truncated or edited
// file; parse() refuses it with the line at fault, and the builder then warns and re-times
// (a stale or corrupted cache never makes a wrong engine, only a slower build).
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace kiln::tuning {

struct TimingEntry {
  std::string tactic;
  double median_ms = 0;  // finite, >= 0
  int64_t runs = 0;      // >= 1
  bool operator==(const TimingEntry& o) const {
    return tactic == o.tactic && median_ms == o.median_ms && runs == o.runs;
  }
};

class TimingCache {
 public:
  static constexpr int kVersion = 1;

  // Parses a cache file's bytes; errors read "<source>:<line>: <what>". check_sum = false skips
  // the checksum (the fuzz target's way past it; everything else is still checked).
  static Expected<TimingCache> parse(std::string_view text, std::string_view source, bool check_sum = true);
  // The file's bytes: entries sorted by device, signature, tactic (two equal caches give equal
  // bytes), then the end line.
  std::string serialize() const;

  // The tactics timed for this layer on this device, or null.
  const std::vector<TimingEntry>* lookup(const std::string& device, const std::string& signature) const;
  // Adds or replaces (same tactic) one timing. Refuses a non-finite or negative time, runs < 1,
  // and an empty device, signature or tactic.
  Status record(const std::string& device, const std::string& signature, TimingEntry entry);
  // Adds every entry of `other` whose (device, signature, tactic) this cache lacks; an entry both
  // have keeps this cache's timing. Returns the number added.
  int merge(const TimingCache& other);

  size_t size() const;  // entries
  size_t size_for_device(const std::string& device) const;  // entries of one device key
  void reset() { layers_.clear(); }
  bool operator==(const TimingCache& o) const { return layers_ == o.layers_; }

 private:
  std::map<std::pair<std::string, std::string>, std::vector<TimingEntry>> layers_;  // tactics sorted by id
};

}  // namespace kiln::tuning
