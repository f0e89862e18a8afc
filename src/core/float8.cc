#include "core/float8.h"

#include <cmath>
#include <limits>

namespace kiln {

namespace {

// A small float format: exponent and mantissa widths, bias, and how it spells NaN/inf.
enum class Specials { kIeee, kFn, kFnuz, kNone };
struct MiniFloat {
  int exp_bits, man_bits, bias;
  Specials specials;

  int bits() const { return 1 + exp_bits + man_bits; }
  uint8_t sign_bit() const { return uint8_t(1u << (exp_bits + man_bits)); }
  // The largest magnitude code that is a finite number.
  uint8_t max_code() const {
    const int all = (1 << (exp_bits + man_bits)) - 1;
    switch (specials) {
      case Specials::kIeee: return uint8_t(all - (1 << man_bits));  // below the inf exponent
      case Specials::kFn: return uint8_t(all - 1);                    // all ones is NaN
      default: return uint8_t(all);
    }
  }
  // Magnitude of a code without its sign bit (finite codes only).
  double magnitude(uint8_t code) const {
    const int e = code >> man_bits, f = code & ((1 << man_bits) - 1);
    if (e == 0) return std::ldexp(double(f), 1 - bias - man_bits);
    return std::ldexp(double((1 << man_bits) + f), e - bias - man_bits);
  }
  uint8_t nan_code(bool negative) const {
    switch (specials) {
      case Specials::kIeee: return uint8_t((negative ? sign_bit() : 0) | (max_code() + 3));
      case Specials::kFn: return uint8_t((negative ? sign_bit() : 0) | (max_code() + 1));
      case Specials::kFnuz: return sign_bit();
      case Specials::kNone: return negative ? 0 : sign_bit();  // what ml_dtypes produces
    }
    return 0;
  }
};

const MiniFloat* format_of(DataType t) {
  static constexpr MiniFloat e4m3fn{4, 3, 7, Specials::kFn}, e4m3fnuz{4, 3, 8, Specials::kFnuz},
      e5m2{5, 2, 15, Specials::kIeee}, e5m2fnuz{5, 2, 16, Specials::kFnuz}, e2m1{2, 1, 1, Specials::kNone};
  switch (t) {
    case DataType::kFloat8E4M3FN: return &e4m3fn;
    case DataType::kFloat8E4M3FNUZ: return &e4m3fnuz;
    case DataType::kFloat8E5M2: return &e5m2;
    case DataType::kFloat8E5M2FNUZ: return &e5m2fnuz;
    case DataType::kFloat4E2M1: return &e2m1;
    default: return nullptr;
  }
}

double decode_minifloat(const MiniFloat& f, uint8_t bits) {
  const uint8_t sign = f.sign_bit(), mag = uint8_t(bits & (sign - 1));
  const bool negative = (bits & sign) != 0;
  if (f.specials == Specials::kFnuz && bits == sign) return std::numeric_limits<double>::quiet_NaN();
  if (f.specials == Specials::kFn && mag == f.max_code() + 1) return std::numeric_limits<double>::quiet_NaN();
  if (f.specials == Specials::kIeee && mag > f.max_code()) {
    if (mag == f.max_code() + 1) return negative ? -HUGE_VAL : HUGE_VAL;
    return std::numeric_limits<double>::quiet_NaN();
  }
  const double m = f.magnitude(mag);
  return negative ? -m : m;
}

// Round-to-nearest-even by search: codes 0..max_code are increasing magnitudes, so the even
// neighbour is the even code. One step past max (code max+1, at max + one ulp) stands for
// "rounded out of range".
uint8_t encode_minifloat(const MiniFloat& f, double v, bool saturate) {
  const bool negative = std::signbit(v);
  if (std::isnan(v)) return f.nan_code(negative);
  const uint8_t sign = negative ? f.sign_bit() : 0;
  const uint8_t top = f.max_code();
  const double max = f.magnitude(top), beyond = max + (max - f.magnitude(uint8_t(top - 1)));
  double a = std::fabs(v);
  if (saturate || f.specials == Specials::kNone) a = std::min(a, max);
  uint8_t code;
  if (a >= beyond) {
    code = uint8_t(top + 1);
  } else {
    uint8_t lo = 0;
    while (lo < top && f.magnitude(uint8_t(lo + 1)) <= a) ++lo;
    const double below = f.magnitude(lo), above = lo < top ? f.magnitude(uint8_t(lo + 1)) : beyond;
    if (a - below < above - a) code = lo;
    else if (a - below > above - a) code = uint8_t(lo + 1);
    else code = (lo % 2 == 0) ? lo : uint8_t(lo + 1);
  }
  if (code > top) {  // out of range without saturation
    if (f.specials == Specials::kIeee) return uint8_t(sign | (top + 1));  // infinity
    return f.nan_code(negative);
  }
  if (code == 0 && f.specials == Specials::kFnuz) return 0;  // no negative zero
  return uint8_t(sign | code);
}

}  // namespace

double decode_quantized(DataType t, uint8_t bits) {
  if (const MiniFloat* f = format_of(t)) return decode_minifloat(*f, bits);
  switch (t) {
    case DataType::kFloat8E8M0:
      return bits == 0xFF ? std::numeric_limits<double>::quiet_NaN() : std::ldexp(1.0, int(bits) - 127);
    case DataType::kUInt4: return bits & 0xF;
    case DataType::kInt4: return (bits & 0x8) ? int(bits & 0xF) - 16 : int(bits & 0xF);
    case DataType::kUInt2: return bits & 0x3;
    case DataType::kInt2: return (bits & 0x2) ? int(bits & 0x3) - 4 : int(bits & 0x3);
    default: return 0;
  }
}

uint8_t encode_float8(DataType t, double v, bool saturate) {
  const MiniFloat* f = format_of(t);
  return f ? encode_minifloat(*f, v, saturate) : 0;
}

// Mirrors onnx.numpy_helper.to_float8e8m0: works on float32's exponent field.
uint8_t encode_float8e8m0(float v, bool saturate, E8M0Round mode) {
  const uint32_t u = float_bits(v);
  uint32_t exponent = (u >> 23) & 0xFF;
  if (exponent == 0xFF) return 0xFF;
  bool up = false;
  if (mode == E8M0Round::kNearest) {
    const bool g = u & 0x400000, r = u & 0x200000, s = u & 0x1FFFFF, lsb = exponent > 0;
    up = g && (r || s || lsb);
  } else if (mode == E8M0Round::kUp) {
    up = (u & 0x7FFFFF) != 0;
  }
  if (up && saturate && exponent == 0xFE) up = false;
  return uint8_t(exponent + (up ? 1 : 0));
}

uint8_t encode_small_int(DataType t, int64_t v) {
  const uint64_t u = static_cast<uint64_t>(v);
  return (t == DataType::kInt2 || t == DataType::kUInt2) ? uint8_t(u & 0x3) : uint8_t(u & 0xF);
}

void int_range(DataType t, int64_t* lo, int64_t* hi) {
  switch (t) {
    case DataType::kUInt4: *lo = 0; *hi = 15; return;
    case DataType::kInt4: *lo = -8; *hi = 7; return;
    case DataType::kUInt2: *lo = 0; *hi = 3; return;
    case DataType::kInt2: *lo = -2; *hi = 1; return;
    case DataType::kUInt8: *lo = 0; *hi = 255; return;
    case DataType::kInt8: *lo = -128; *hi = 127; return;
    case DataType::kUInt16: *lo = 0; *hi = 65535; return;
    case DataType::kInt16: *lo = -32768; *hi = 32767; return;
    case DataType::kInt32: *lo = std::numeric_limits<int32_t>::min(); *hi = std::numeric_limits<int32_t>::max(); return;
    case DataType::kUInt32: *lo = 0; *hi = std::numeric_limits<uint32_t>::max(); return;
    default: *lo = std::numeric_limits<int64_t>::min(); *hi = std::numeric_limits<int64_t>::max(); return;
  }
}

uint8_t load_bits(const std::byte* data, DataType t, int64_t i) {
  const size_t bits = dtype_bits(t);
  if (bits >= 8) return static_cast<uint8_t>(data[i]);
  const size_t per_byte = 8 / bits;
  const unsigned shift = unsigned((static_cast<size_t>(i) % per_byte) * bits);
  return uint8_t((static_cast<uint8_t>(data[static_cast<size_t>(i) / per_byte]) >> shift) & ((1u << bits) - 1));
}

void store_bits(std::byte* data, DataType t, int64_t i, uint8_t value) {
  const size_t bits = dtype_bits(t);
  if (bits >= 8) { data[i] = std::byte(value); return; }
  const size_t per_byte = 8 / bits;
  const unsigned shift = unsigned((static_cast<size_t>(i) % per_byte) * bits);
  const uint8_t mask = uint8_t(((1u << bits) - 1) << shift);
  uint8_t& b = reinterpret_cast<uint8_t&>(data[static_cast<size_t>(i) / per_byte]);
  b = uint8_t((b & ~mask) | ((value << shift) & mask));
}

}  // namespace kiln
