#include "tuning/timing_cache.h"

#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace kiln::tuning {

namespace {

constexpr std::string_view kHeader = "kiln-timing-cache ";

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

bool unescape(std::string_view s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') { out += s[i]; continue; }
    if (++i == s.size()) return false;
    if (s[i] == '\\') out += '\\';
    else if (s[i] == 't') out += '\t';
    else if (s[i] == 'n') out += '\n';
    else return false;
  }
  return true;
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> f;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i)
    if (i == line.size() || line[i] == '\t') f.push_back(line.substr(start, i - start)), start = i + 1;
  return f;
}

bool valid(const TimingEntry& e) { return !e.tactic.empty() && std::isfinite(e.median_ms) && e.median_ms >= 0 && e.runs >= 1; }

// The shortest text that reads back as the same double (std::to_chars); strtod reads it exactly.
std::string number(double v) {
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace

Expected<TimingCache> TimingCache::parse(std::string_view text, std::string_view source, bool check_sum) {
  int line_no = 0;
  auto fail = [&](const std::string& what) {
    return Status::error(std::string(source) + ":" + std::to_string(line_no) + ": " + what);
  };
  TimingCache cache;
  size_t pos = 0, count = 0;
  bool ended = false;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      ++line_no;
      return fail("the file ends inside a line (truncated?)");
    }
    std::string_view line = text.substr(pos, nl - pos);
    const size_t line_start = pos;
    pos = nl + 1;
    ++line_no;
    if (ended) return fail("text after the end line");
    if (line_no == 1) {
      if (line.substr(0, kHeader.size()) != kHeader) return fail("not a kiln timing cache (no 'kiln-timing-cache <version>' line)");
      std::string_view v = line.substr(kHeader.size());
      int version = 0;
      auto r = std::from_chars(v.data(), v.data() + v.size(), version);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size()) return fail("bad format version '" + std::string(v) + "'");
      if (version != kVersion)
        return fail("format version " + std::to_string(version) + ", this kiln reads " + std::to_string(kVersion));
      continue;
    }
    if (line.substr(0, 4) == "end ") {
      unsigned long long n = 0, sum = 0;
      std::string rest(line.substr(4));
      char tail = 0;
      if (rest.size() > 64 || std::sscanf(rest.c_str(), "%llu %16llx%c", &n, &sum, &tail) != 2 || rest.find(' ') == std::string::npos ||
          rest.size() - rest.find(' ') - 1 != 16)
        return fail("bad end line (want 'end <entries> <16 hex digits>')");
      if (n != count) return fail("the end line counts " + std::to_string(n) + " entries, the file has " + std::to_string(count));
      if (check_sum && XXH64(text.data(), line_start, 0) != sum) return fail("checksum mismatch (the file was changed or damaged)");
      ended = true;
      continue;
    }
    auto f = split_tabs(line);
    if (f.size() != 5) return fail("an entry has " + std::to_string(f.size()) + " tab-separated fields, not 5");
    std::string device, signature;
    TimingEntry e;
    if (!unescape(f[0], device) || !unescape(f[1], signature) || !unescape(f[2], e.tactic))
      return fail("bad escape (only \\\\, \\t and \\n)");
    std::string ms(f[3]), runs(f[4]);
    char* end = nullptr;
    e.median_ms = std::strtod(ms.c_str(), &end);
    if (ms.empty() || end != ms.c_str() + ms.size()) return fail("bad time '" + ms + "'");
    auto r = std::from_chars(runs.data(), runs.data() + runs.size(), e.runs);
    if (r.ec != std::errc() || r.ptr != runs.data() + runs.size()) return fail("bad run count '" + runs + "'");
    auto* known = cache.lookup(device, signature);
    if (known && std::any_of(known->begin(), known->end(), [&](const TimingEntry& k) { return k.tactic == e.tactic; }))
      return fail("tactic '" + e.tactic + "' timed twice for one layer");
    Status s = cache.record(device, signature, std::move(e));
    if (!s) return fail(s.message());
    ++count;
  }
  if (line_no == 0) return fail("empty file");
  if (!ended) return fail("no end line (truncated?)");
  return cache;
}

std::string TimingCache::serialize() const {
  std::string out = std::string(kHeader) + std::to_string(kVersion) + "\n";
  size_t n = 0;
  for (const auto& [key, tactics] : layers_)
    for (const TimingEntry& e : tactics) {
      out += escape(key.first) + "\t" + escape(key.second) + "\t" + escape(e.tactic) + "\t" + number(e.median_ms) + "\t" +
             std::to_string(e.runs) + "\n";
      ++n;
    }
  char end[64];
  std::snprintf(end, sizeof end, "end %zu %016" PRIx64 "\n", n, uint64_t(XXH64(out.data(), out.size(), 0)));
  return out + end;
}

const std::vector<TimingEntry>* TimingCache::lookup(const std::string& device, const std::string& signature) const {
  auto it = layers_.find({device, signature});
  return it == layers_.end() ? nullptr : &it->second;
}

Status TimingCache::record(const std::string& device, const std::string& signature, TimingEntry entry) {
  if (device.empty() || signature.empty()) return Status::error("a timing needs a device and a layer signature");
  if (!valid(entry))
    return Status::error("bad timing for tactic '" + entry.tactic + "': " + number(entry.median_ms) + " ms over " +
                         std::to_string(entry.runs) + " runs");
  auto& tactics = layers_[{device, signature}];
  auto it = std::lower_bound(tactics.begin(), tactics.end(), entry.tactic,
                             [](const TimingEntry& e, const std::string& id) { return e.tactic < id; });
  if (it != tactics.end() && it->tactic == entry.tactic) *it = std::move(entry);
  else tactics.insert(it, std::move(entry));
  return Status::ok();
}

int TimingCache::merge(const TimingCache& other) {
  int added = 0;
  for (const auto& [key, tactics] : other.layers_)
    for (const TimingEntry& e : tactics) {
      const auto* mine = lookup(key.first, key.second);
      if (mine && std::any_of(mine->begin(), mine->end(), [&](const TimingEntry& m) { return m.tactic == e.tactic; })) continue;
      if (record(key.first, key.second, e)) ++added;
    }
  return added;
}

size_t TimingCache::size() const {
  size_t n = 0;
  for (const auto& [key, tactics] : layers_) n += tactics.size();
  return n;
}

size_t TimingCache::size_for_device(const std::string& device) const {
  size_t n = 0;
  for (const auto& [key, tactics] : layers_) n += key.first == device ? tactics.size() : 0;
  return n;
}

}  // namespace kiln::tuning
