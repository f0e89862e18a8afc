// Host tensors: random fill in a stated range, --loadInputs files, element conversion.
#include <cstring>
#include <fstream>
#include <random>

#include "tools/kiln/inference.h"

namespace kiln::cli {
namespace {

// IEEE half by hand (round to nearest even), as src/core/float16.h does: _Float16 is not
// available with every compiler (clang 14 on x86-64 rejects it), and the CLI uses only the
// public API.
uint32_t bits_of(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
float float_of(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f) return float_of(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp == 0) {                                                       // zero / subnormal
    float v = float(mant) * (1.0f / 16777216.0f);                       // mant * 2^-24
    return sign ? -v : v;
  }
  return float_of(sign | ((exp + 112) << 23) | (mant << 13));
}
uint16_t float_to_half(float x) {
  uint32_t u = bits_of(x), abs = u & 0x7fffffffu;
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);  // inf / nan
  if (abs >= 0x477ff000u) return sign | 0x7c00;                                  // overflow
  if (abs < 0x38800000u) return sign | uint16_t(bits_of(float_of(abs) + 0.5f) - 0x3f000000u);  // subnormal
  abs += 0xc8000fffu + ((abs >> 13) & 1);  // rebias the exponent, round to nearest even
  return sign | uint16_t(abs >> 13);
}
float bf16_to_float(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t float_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);  // round to nearest even
}

template <class T>
T load(const HostTensor& t, size_t i) {
  T v;
  std::memcpy(&v, t.bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}
template <class T>
void store(HostTensor& t, size_t i, T v) {
  std::memcpy(t.bytes.data() + i * sizeof(T), &v, sizeof(T));
}

bool is_float(TensorType t) {
  return t == TensorType::kFLOAT || t == TensorType::kDOUBLE || t == TensorType::kHALF || t == TensorType::kBF16;
}

void set_element(HostTensor& t, size_t i, double v) {
  switch (t.type) {
    case TensorType::kFLOAT: return store(t, i, float(v));
    case TensorType::kDOUBLE: return store(t, i, v);
    case TensorType::kHALF: return store(t, i, float_to_half(float(v)));
    case TensorType::kBF16: return store(t, i, float_to_bf16(float(v)));
    case TensorType::kINT8: return store(t, i, int8_t(v));
    case TensorType::kUINT8: return store(t, i, uint8_t(v));
    case TensorType::kINT16: return store(t, i, int16_t(v));
    case TensorType::kUINT16: return store(t, i, uint16_t(v));
    case TensorType::kINT32: return store(t, i, int32_t(v));
    case TensorType::kUINT32: return store(t, i, uint32_t(v));
    case TensorType::kINT64: return store(t, i, int64_t(v));
    case TensorType::kUINT64: return store(t, i, uint64_t(v));
    case TensorType::kBOOL: return store(t, i, uint8_t(v != 0));
  }
}

uint32_t seed_of(const std::string& name) {  // FNV-1a: the same data on every run and machine
  uint32_t h = 2166136261u;
  for (char c : name) h = (h ^ uint8_t(c)) * 16777619u;
  return h;
}

}  // namespace

double element_as_double(const HostTensor& t, size_t i) {
  switch (t.type) {
    case TensorType::kFLOAT: return load<float>(t, i);
    case TensorType::kDOUBLE: return load<double>(t, i);
    case TensorType::kHALF: return half_to_float(load<uint16_t>(t, i));
    case TensorType::kBF16: return bf16_to_float(load<uint16_t>(t, i));
    case TensorType::kINT8: return load<int8_t>(t, i);
    case TensorType::kUINT8: return load<uint8_t>(t, i);
    case TensorType::kINT16: return load<int16_t>(t, i);
    case TensorType::kUINT16: return load<uint16_t>(t, i);
    case TensorType::kINT32: return load<int32_t>(t, i);
    case TensorType::kUINT32: return load<uint32_t>(t, i);
    case TensorType::kINT64: return double(load<int64_t>(t, i));
    case TensorType::kUINT64: return double(load<uint64_t>(t, i));
    case TensorType::kBOOL: return load<uint8_t>(t, i) ? 1 : 0;
  }
  return 0;
}

// Floats uniform in [-1, 1]; integers uniform in [0, 3] (safe as indices); bools 0/1.
std::string fill_random(HostTensor& t) {
  std::mt19937 rng(seed_of(t.name));
  size_t n = volume(t.dims);
  if (is_float(t.type)) {
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    for (size_t i = 0; i < n; ++i) set_element(t, i, d(rng));
    return "random values in [-1, 1]";
  }
  int hi = t.type == TensorType::kBOOL ? 1 : 3;
  std::uniform_int_distribution<int> d(0, hi);
  for (size_t i = 0; i < n; ++i) set_element(t, i, d(rng));
  return "random integers in [0, " + std::to_string(hi) + "]";
}

void load_raw(HostTensor& t, const std::string& file) {
  std::ifstream f(file, std::ios::binary | std::ios::ate);
  if (!f) fail("--loadInputs: cannot read '", file, "' for input '", t.name, "'");
  size_t size = static_cast<size_t>(f.tellg());
  if (size != t.bytes.size())
    fail("--loadInputs: '", file, "' has ", size, " bytes but input '", t.name, "' (", tensorTypeName(t.type), " ",
         dimsToString(t.dims), ") needs ", t.bytes.size());
  f.seekg(0);
  f.read(reinterpret_cast<char*>(t.bytes.data()), static_cast<std::streamsize>(size));
  if (!f) fail("--loadInputs: error reading '", file, "'");
}

}  // namespace kiln::cli
