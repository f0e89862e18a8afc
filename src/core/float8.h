// ONNX's quantized element types as stored values: the float8 formats (e4m3fn, e4m3fnuz,
// e5m2, e5m2fnuz, e8m0), float4e2m1, and the packed integers int4/uint4/int2/uint2.
// Conversions are exact where the value is representable and otherwise round to nearest
// even, matching onnx.numpy_helper / ml_dtypes (what ONNX's reference implementation uses).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace kiln {

// The value of one element from its bits (the byte of a float8, the low 4 or 2 bits of a
// packed type). NaN for NaN codes, +-inf for e5m2's infinities.
double decode_quantized(DataType t, uint8_t bits);

// Rounds v to a float8 type (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz) or float4e2m1, to nearest
// even. With `saturate`, out-of-range values and infinities become +-max (ONNX's default);
// without, they become NaN (or +-inf for e5m2, which has infinities). float4e2m1 has no
// NaN or infinity and always saturates.
uint8_t encode_float8(DataType t, double v, bool saturate);

// float8e8m0 (a power of two 2^(code-127), 0xFF is NaN), rounded as ONNX's Cast does:
// `round_mode` up, down or nearest on float32's exponent; saturate keeps the largest
// exponent from rounding up into NaN.
enum class E8M0Round { kUp, kDown, kNearest };
uint8_t encode_float8e8m0(float v, bool saturate, E8M0Round mode);

// The two's-complement (int4/int2) or plain (uint4/uint2) bits of integer v, wrapping like
// a C++ narrowing cast.
uint8_t encode_small_int(DataType t, int64_t v);
// The representable range of an integer type, quantized ones included (int4: -8..7).
void int_range(DataType t, int64_t* lo, int64_t* hi);

// Element i of a tensor's bytes: the whole byte for 8-bit types, else the i-th 4- or 2-bit
// field, low bits first.
uint8_t load_bits(const std::byte* data, DataType t, int64_t i);
void store_bits(std::byte* data, DataType t, int64_t i, uint8_t bits);

inline double load_quantized(const std::byte* data, DataType t, int64_t i) {
  return decode_quantized(t, load_bits(data, t, i));
}

}  // namespace kiln
