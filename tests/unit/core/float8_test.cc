#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/float8.h"
#include "ir/tensor.h"

namespace kiln {

namespace {

// Each format straight from its definition (OCP FP8 / ONNX's float8 spec), independent of
// the code under test: value of every byte, NaN where the format has one.
struct Format { DataType type; int e, m, bias; bool ieee_inf, fn, fnuz; };
const Format kFormats[] = {
    {DataType::kFloat8E4M3FN, 4, 3, 7, false, true, false},
    {DataType::kFloat8E4M3FNUZ, 4, 3, 8, false, false, true},
    {DataType::kFloat8E5M2, 5, 2, 15, true, false, false},
    {DataType::kFloat8E5M2FNUZ, 5, 2, 16, false, false, true},
};

double reference_value(const Format& f, int byte) {
  const int sign = byte >> 7, exp = (byte >> f.m) & ((1 << f.e) - 1), man = byte & ((1 << f.m) - 1);
  if (f.fnuz && byte == 0x80) return NAN;
  if (f.fn && exp == (1 << f.e) - 1 && man == (1 << f.m) - 1) return NAN;
  if (f.ieee_inf && exp == (1 << f.e) - 1) return man == 0 ? (sign ? -INFINITY : INFINITY) : NAN;
  double v = exp == 0 ? man * std::pow(2.0, 1 - f.bias - f.m)
                      : (1.0 + man / std::pow(2.0, f.m)) * std::pow(2.0, exp - f.bias);
  return sign ? -v : v;
}

}  // namespace

TEST(Float8, DecodesEveryCodeAsDefined) {
  for (const Format& f : kFormats) {
    for (int b = 0; b < 256; ++b) {
      double want = reference_value(f, b), got = decode_quantized(f.type, uint8_t(b));
      if (std::isnan(want)) EXPECT_TRUE(std::isnan(got)) << dtype_name(f.type) << " byte " << b;
      else EXPECT_EQ(got, want) << dtype_name(f.type) << " byte " << b;
      if (!std::isnan(want) && want != 0) EXPECT_EQ(std::signbit(got), std::signbit(want));
    }
  }
}

TEST(Float8, EveryCodeRoundTrips) {
  for (const Format& f : kFormats) {
    for (int b = 0; b < 256; ++b) {
      double v = reference_value(f, b);
      for (bool sat : {false, true}) {
        uint8_t enc = encode_float8(f.type, v, sat);
        if (std::isnan(v)) {
          EXPECT_TRUE(std::isnan(reference_value(f, enc))) << dtype_name(f.type) << " byte " << b;
        } else if (std::isinf(v) && sat) {
          EXPECT_EQ(std::fabs(reference_value(f, enc)), 57344.0);  // only e5m2 has infinities
        } else {
          EXPECT_EQ(enc, b) << dtype_name(f.type) << " value " << v << " saturate " << sat;
        }
      }
    }
  }
}

// Between any two neighbouring finite values: the midpoint goes to the even code, anything
// off the midpoint to the nearer one.
TEST(Float8, RoundsToNearestEven) {
  for (const Format& f : kFormats) {
    for (int b = 0; b < 0x7F; ++b) {
      double lo = reference_value(f, b), hi = reference_value(f, b + 1);
      if (!std::isfinite(lo) || !std::isfinite(hi)) continue;
      const double mid = (lo + hi) / 2;
      EXPECT_EQ(encode_float8(f.type, mid, true), b % 2 == 0 ? b : b + 1) << dtype_name(f.type) << " " << mid;
      EXPECT_EQ(encode_float8(f.type, std::nextafter(mid, lo), true), b);
      EXPECT_EQ(encode_float8(f.type, std::nextafter(mid, hi), true), b + 1);
      EXPECT_EQ(encode_float8(f.type, -std::nextafter(mid, hi), true), (b + 1) | 0x80);
    }
  }
}

// The saturate=0 table of ONNX's Cast and what ml_dtypes produces.
TEST(Float8, OutOfRangeWithAndWithoutSaturation) {
  EXPECT_EQ(encode_float8(DataType::kFloat8E4M3FN, 1e6, true), 0x7E);       // 448
  EXPECT_EQ(encode_float8(DataType::kFloat8E4M3FN, -INFINITY, true), 0xFE);
  EXPECT_EQ(encode_float8(DataType::kFloat8E4M3FN, 464, false), 0x7E);      // tie to even 448
  EXPECT_EQ(encode_float8(DataType::kFloat8E4M3FN, 465, false), 0x7F);      // NaN
  EXPECT_EQ(encode_float8(DataType::kFloat8E4M3FN, -INFINITY, false), 0xFF);
  EXPECT_EQ(encode_float8(DataType::kFloat8E4M3FNUZ, 248, false), 0x80);    // ties up past 240: NaN
  EXPECT_EQ(encode_float8(DataType::kFloat8E4M3FNUZ, 1e6, true), 0x7F);     // 240
  EXPECT_EQ(encode_float8(DataType::kFloat8E4M3FNUZ, -1e-9, false), 0x00);  // no negative zero
  EXPECT_EQ(encode_float8(DataType::kFloat8E5M2, INFINITY, false), 0x7C);
  EXPECT_EQ(encode_float8(DataType::kFloat8E5M2, -1e6, false), 0xFC);
  EXPECT_EQ(encode_float8(DataType::kFloat8E5M2, 1e6, true), 0x7B);         // 57344
  EXPECT_EQ(encode_float8(DataType::kFloat8E5M2FNUZ, INFINITY, false), 0x80);
  EXPECT_EQ(encode_float8(DataType::kFloat8E5M2, -1e-9, false), 0x80);      // -0
}

TEST(Float4E2M1, ValuesAndRounding) {
  const double values[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  for (int b = 0; b < 16; ++b) {
    double want = (b & 8) ? -values[b & 7] : values[b & 7];
    EXPECT_EQ(decode_quantized(DataType::kFloat4E2M1, uint8_t(b)), want);
    EXPECT_EQ(encode_float8(DataType::kFloat4E2M1, want, false), b);
  }
  // ONNX's test_cast_FLOAT_to_FLOAT4E2M1: saturating, ties to even.
  const double in[] = {0.48, 0.25, 1.05, -3.5, -8, 9, 1e6, 1e-7, INFINITY, -INFINITY, 2.5, 5};
  const double out[] = {0.5, 0, 1, -4, -6, 6, 6, 0, 6, -6, 2, 4};
  for (size_t i = 0; i < std::size(in); ++i)
    EXPECT_EQ(decode_quantized(DataType::kFloat4E2M1, encode_float8(DataType::kFloat4E2M1, in[i], false)), out[i]) << in[i];
}

TEST(Float8E8M0, PowersOfTwoRoundedAsOnnx) {
  EXPECT_EQ(decode_quantized(DataType::kFloat8E8M0, 127), 1.0);
  EXPECT_TRUE(std::isnan(decode_quantized(DataType::kFloat8E8M0, 0xFF)));
  EXPECT_EQ(encode_float8e8m0(0.124f, true, E8M0Round::kUp), 124);  // 0.125
  EXPECT_EQ(encode_float8e8m0(1.1f, true, E8M0Round::kUp), 128);    // 2
  EXPECT_EQ(encode_float8e8m0(1.1f, true, E8M0Round::kDown), 127);  // 1
  EXPECT_EQ(encode_float8e8m0(1.6f, true, E8M0Round::kNearest), 128);
  EXPECT_EQ(encode_float8e8m0(0.0f, true, E8M0Round::kUp), 0);
  EXPECT_EQ(encode_float8e8m0(INFINITY, true, E8M0Round::kUp), 0xFF);
}

TEST(PackedInts, Int4PacksTwoPerByteLowNibbleFirst) {
  Tensor t = Tensor::zeros(DataType::kInt4, {5}).value();  // odd count: 3 bytes, last half unused
  EXPECT_EQ(t.nbytes(), 3u);
  const int64_t values[] = {-8, 7, -1, 0, 3};
  for (int64_t i = 0; i < 5; ++i) store_bits(t.mutable_raw(), DataType::kInt4, i, encode_small_int(DataType::kInt4, values[i]));
  const auto* bytes = reinterpret_cast<const uint8_t*>(t.raw());
  EXPECT_EQ(bytes[0], 0x78);
  EXPECT_EQ(bytes[1], 0x0F);
  EXPECT_EQ(bytes[2], 0x03);
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(t.get_as_double(i), double(values[i]));
    EXPECT_EQ(t.get_as_int64(i), values[i]);
  }
  // Rewriting one element leaves its neighbour alone.
  store_bits(t.mutable_raw(), DataType::kInt4, 1, encode_small_int(DataType::kInt4, -3));
  EXPECT_EQ(t.get_as_double(0), -8);
  EXPECT_EQ(t.get_as_double(1), -3);
  EXPECT_EQ(encode_small_int(DataType::kInt4, 8), 0x8);  // wraps like a narrowing cast
  EXPECT_EQ(encode_small_int(DataType::kInt4, -9), 0x7);
}

TEST(PackedInts, UInt4AndTwoBitTypes) {
  Tensor u = Tensor::zeros(DataType::kUInt4, {3}).value();
  EXPECT_EQ(u.nbytes(), 2u);
  for (int64_t i = 0; i < 3; ++i) store_bits(u.mutable_raw(), DataType::kUInt4, i, uint8_t(13 + i));
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(u.get_as_double(i), 13 + i);
  Tensor t = Tensor::zeros(DataType::kInt2, {7}).value();
  EXPECT_EQ(t.nbytes(), 2u);
  const int64_t values[] = {-2, -1, 0, 1, 1, -2, -1};
  for (int64_t i = 0; i < 7; ++i) store_bits(t.mutable_raw(), DataType::kInt2, i, encode_small_int(DataType::kInt2, values[i]));
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(t.raw())[0], 0x4E);  // 10 11 00 01 from the low bits up
  for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(t.get_as_double(i), double(values[i]));
  EXPECT_EQ(dtype_nbytes(DataType::kUInt2, 9), 3u);
  EXPECT_EQ(dtype_size(DataType::kInt4), 0u);  // no whole-byte element
  EXPECT_EQ(dtype_size(DataType::kFloat8E5M2), 1u);
}

TEST(PackedInts, ViewChecksPackedByteCount) {
  auto bytes = std::shared_ptr<const std::byte>(new std::byte[4](), std::default_delete<std::byte[]>());
  EXPECT_TRUE(Tensor::view(DataType::kUInt4, {7}, bytes, 4).is_ok());
  EXPECT_FALSE(Tensor::view(DataType::kUInt4, {7}, bytes, 7).is_ok());
}

}  // namespace kiln
