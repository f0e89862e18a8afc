// IEEE half (float16) and bfloat16 as storage types with exact conversions to and from float.
// Kernels compute in float and store back; both convert with round-to-nearest-even.
#pragma once
#include <cstdint>
#include <cstring>

namespace kiln {

inline uint32_t float_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));   // inf / nan
  if (exp == 0) {                                                          // zero / subnormal
    if (mant == 0) return bits_float(sign);
    float v = float(mant) * (1.0f / 16777216.0f);                          // mant * 2^-24
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t float_to_half(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);  // inf / nan
  if (abs >= 0x477ff000u) return sign | 0x7c00;                                  // overflow
  if (abs < 0x38800000u) {                                                       // subnormal
    // Adding 0.5 makes the FPU round the mantissa to nearest even at 2^-24 granularity.
    float v = bits_float(abs) + 0.5f;
    return sign | uint16_t(float_bits(v) - 0x3f000000u);
  }
  uint32_t mant_odd = (abs >> 13) & 1;
  abs += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
  return sign | uint16_t(abs >> 13);
}

inline float bf16_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }
inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet nan
  u += 0x7fffu + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

struct Half {
  uint16_t bits = 0;
  Half() = default;
  Half(float f) : bits(float_to_half(f)) {}  // NOLINT: implicit, like a float
  operator float() const { return half_to_float(bits); }
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) : bits(float_to_bf16(f)) {}  // NOLINT
  operator float() const { return bf16_to_float(bits); }
};

}  // namespace kiln
