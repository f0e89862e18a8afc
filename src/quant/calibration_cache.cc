#include "quant/calibration_cache.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>

namespace kiln::quant {

namespace {

// "8 hex digits" as TensorRT writes them; fewer are accepted (a writer that drops leading zeros).
bool parse_hex_bits(std::string_view s, uint32_t& bits) {
  if (s.empty() || s.size() > 8) return false;
  bits = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return false;
    bits = bits << 4 | static_cast<uint32_t>(d);
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

}  // namespace

Expected<CalibrationCache> parse_calibration_cache(std::string_view text, std::string_view source) {
  CalibrationCache cache;
  std::set<std::string, std::less<>> seen;
  size_t line_no = 0;
  auto where = [&] { return std::string(source) + ":" + std::to_string(line_no) + ": "; };
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.find('\0') != std::string_view::npos) return err(where(), "a NUL byte: not a text calibration cache");
    if (line_no == 1) {
      // TRT-<version>-<algorithm>; the algorithm may not contain '-', the version may not either.
      size_t dash = line.rfind('-');
      if (line.substr(0, 4) != "TRT-" || dash == std::string_view::npos || dash < 4 || dash + 1 == line.size())
        return err(where(), "expected the header 'TRT-<version>-<algorithm>' (e.g. TRT-8601-EntropyCalibration2), got '",
                   std::string(line.substr(0, 80)), "'");
      cache.version = std::string(line.substr(4, dash - 4));
      cache.algorithm = std::string(line.substr(dash + 1));
      continue;
    }
    if (line.empty()) continue;
    size_t colon = line.rfind(": ");
    if (colon == std::string_view::npos || colon == 0)
      return err(where(), "expected '<tensor name>: <scale as 8 hex digits>', got '", std::string(line.substr(0, 80)), "'");
    std::string_view name = line.substr(0, colon), hex = trim(line.substr(colon + 2));
    uint32_t bits = 0;
    if (!parse_hex_bits(hex, bits))
      return err(where(), "tensor '", std::string(name), "': scale '", std::string(hex.substr(0, 16)),
                 "' is not a float32 as 8 hex digits");
    float scale;
    std::memcpy(&scale, &bits, 4);
    if (!std::isfinite(scale) || scale < 0)
      return err(where(), "tensor '", std::string(name), "': scale ", scale, " is not a finite non-negative number");
    if (!seen.emplace(name).second) return err(where(), "tensor '", std::string(name), "' appears twice");
    cache.scales.emplace_back(std::string(name), scale);
  }
  if (line_no == 0) return err(std::string(source), ": empty calibration cache");
  return cache;
}

std::string format_calibration_cache(const CalibrationCache& cache) {
  std::string out = "TRT-" + cache.version + "-" + cache.algorithm + "\n";
  for (const auto& [name, scale] : cache.scales) {
    uint32_t bits;
    std::memcpy(&bits, &scale, 4);
    char hex[16];
    std::snprintf(hex, sizeof hex, "%08x", bits);
    out += name + ": " + hex + "\n";
  }
  return out;
}

}  // namespace kiln::quant
