#include "quant/calibration_cache.h"

#include <gtest/gtest.h>

namespace kiln::quant {
namespace {

// A cache as TensorRT 8.6's IInt8EntropyCalibrator2 writes it (names with ": " and spaces included).
const char* kTrtCache =
    "TRT-8601-EntropyCalibration2\n"
    "input: 3c010a14\n"
    "(Unnamed Layer* 0) [Convolution]_output: 3d8d7e4f\n"
    "a: b: 00000000\n";

TEST(CalibrationCache, ReadsTensorRtText) {
  auto c = parse_calibration_cache(kTrtCache, "calib.cache");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->version, "8601");
  EXPECT_EQ(c->algorithm, "EntropyCalibration2");
  ASSERT_EQ(c->scales.size(), 3u);
  EXPECT_EQ(c->scales[0].first, "input");
  EXPECT_FLOAT_EQ(c->scales[0].second, 0.007875938f);  // 0x3c010a14
  EXPECT_EQ(c->scales[1].first, "(Unnamed Layer* 0) [Convolution]_output");
  EXPECT_EQ(c->scales[2].first, "a: b");
  EXPECT_EQ(c->scales[2].second, 0.0f);
}

TEST(CalibrationCache, RoundTripsByteForByte) {
  auto c = parse_calibration_cache(kTrtCache, "calib.cache");
  ASSERT_TRUE(c);
  EXPECT_EQ(format_calibration_cache(*c), kTrtCache);
  auto crlf = parse_calibration_cache("TRT-8601-MinMaxCalibration\r\nx: 3f800000\r\n", "w.cache");
  ASSERT_TRUE(crlf) << crlf.status().message();
  EXPECT_EQ(crlf->scales.at(0).second, 1.0f);
}

TEST(CalibrationCache, ErrorsNameFileAndLine) {
  struct Case { const char* text; const char* want; };
  const Case cases[] = {
      {"", "c.cache: empty calibration cache"},
      {"kiln calibration\nx: 3f800000\n", "c.cache:1: expected the header"},
      {"TRT-8601-EntropyCalibration2\nx 3f800000\n", "c.cache:2: expected '<tensor name>: "},
      {"TRT-8601-EntropyCalibration2\nx: 3f80000z\n", "c.cache:2: tensor 'x': scale '3f80000z' is not a float32"},
      {"TRT-8601-EntropyCalibration2\nx: 3f8000001\n", "c.cache:2: tensor 'x': scale '3f8000001'"},
      {"TRT-8601-EntropyCalibration2\nx: 7fc00000\n", "c.cache:2: tensor 'x': scale nan is not a finite"},
      {"TRT-8601-EntropyCalibration2\nx: bf800000\n", "c.cache:2: tensor 'x': scale -1 is not a finite"},
      {"TRT-8601-EntropyCalibration2\nx: 3f800000\n\nx: 3f800000\n", "c.cache:4: tensor 'x' appears twice"},
      {"TRT-8601-EntropyCalibration2\nx: \n", "c.cache:2: expected '<tensor name>: "},
  };
  for (const auto& c : cases) {
    auto r = parse_calibration_cache(c.text, "c.cache");
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.status().message().rfind(c.want, 0), 0u) << r.status().message();
  }
}

}  // namespace
}  // namespace kiln::quant
