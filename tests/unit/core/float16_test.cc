#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/float16.h"

namespace kiln {

TEST(Float16, RoundTripsEveryHalf) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    uint16_t h = static_cast<uint16_t>(b);
    float f = half_to_float(h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_half(f), h) << "bits " << b;
  }
}

TEST(Float16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048), 0x3c00);            // halfway, rounds to even (down)
  EXPECT_EQ(float_to_half(1.0f + 3.0f / 2048), 0x3c02);            // halfway, rounds to even (up)
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);                      // rounds to inf
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
  EXPECT_FLOAT_EQ(half_to_float(0x0001), 5.9604645e-08f);          // smallest subnormal
}

TEST(BFloat16, RoundTripAndRounding) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_FLOAT_EQ(bf16_to_float(float_to_bf16(3.140625f)), 3.140625f);
  EXPECT_EQ(float_to_bf16(bits_float(0x3f808000u)), 0x3f80);        // tie -> even
  EXPECT_EQ(float_to_bf16(bits_float(0x3f818000u)), 0x3f82);
}

}  // namespace kiln
