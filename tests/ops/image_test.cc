// ImageDecoder: kiln's own BMP and PNM readers (bottom-up rows, palettes, plain and binary PNM),
// the pixel formats (BGR swaps, Grayscale uses Pillow's luma), and the empty [0, 0, C] result
// for a stream that cannot be decoded. The library-backed formats run in the onnx node suite.
#include <string>

#include "tests/ops/op_test.h"

namespace kiln::testing {

namespace {
Tensor stream(const std::string& bytes) {
  return Tensor::from_vector<uint8_t>({static_cast<int64_t>(bytes.size())},
                                      std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

Expected<std::vector<Tensor>> decode(const std::string& bytes, const std::string& fmt = "RGB") {
  return run_op("ImageDecoder", {stream(bytes)}, {{"pixel_format", fmt}}, 1, 20);
}

void put(std::string& s, size_t at, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

// A 2x2 24-bit BMP, bottom-up: top row red, green; bottom row blue, white.
std::string bmp_2x2() {
  std::string s(54 + 16, '\0');
  s[0] = 'B';
  s[1] = 'M';
  put(s, 2, static_cast<uint32_t>(s.size()), 4);
  put(s, 10, 54, 4);
  put(s, 14, 40, 4);
  put(s, 18, 2, 4);
  put(s, 22, 2, 4);
  put(s, 26, 1, 2);
  put(s, 28, 24, 2);
  const unsigned char bottom[8] = {255, 0, 0, 255, 255, 255, 0, 0};  // BGR blue, BGR white, pad
  const unsigned char top[8] = {0, 0, 255, 0, 255, 0, 0, 0};         // BGR red, BGR green, pad
  for (int i = 0; i < 8; ++i) {
    s[54 + i] = static_cast<char>(bottom[i]);
    s[62 + i] = static_cast<char>(top[i]);
  }
  return s;
}

Tensor u8(std::vector<int64_t> dims, std::vector<uint8_t> v) { return Tensor::from_vector<uint8_t>(dims, v); }
}  // namespace

TEST(ImageDecoder, BmpBottomUpRowsAsRgbAndBgr) {
  auto y = decode(bmp_2x2());
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], u8({2, 2, 3}, {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255})));
  y = decode(bmp_2x2(), "BGR");
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], u8({2, 2, 3}, {0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255})));
}

TEST(ImageDecoder, GrayscaleUsesPillowLuma) {
  auto y = decode(bmp_2x2(), "Grayscale");
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  // (19595 R + 38470 G + 7471 B + 32768) >> 16 for red, green, blue, white.
  EXPECT_TRUE(tensors_near((*y)[0], u8({2, 2, 1}, {76, 150, 29, 255})));
}

TEST(ImageDecoder, PnmBinaryAndPlain) {
  auto y = decode(std::string("P6\n# comment\n2 1\n255\n") + std::string("\x01\x02\x03\x04\x05\x06", 6));
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], u8({1, 2, 3}, {1, 2, 3, 4, 5, 6})));
  y = decode("P2 2 1 15 0 15");  // plain graymap, maxval 15, expanded to RGB
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_TRUE(tensors_near((*y)[0], u8({1, 2, 3}, {0, 0, 0, 255, 255, 255})));
}

TEST(ImageDecoder, UndecodableStreamGivesEmptyImage) {
  std::string truncated = bmp_2x2().substr(0, 60);
  auto y = decode(truncated);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].dims(), (std::vector<int64_t>{0, 0, 3}));
  y = decode("not an image at all", "Grayscale");
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].dims(), (std::vector<int64_t>{0, 0, 1}));
  y = decode(std::string("\xFF\xD8\xFF\xE0garbage", 11));  // a JPEG header, then nothing valid
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ((*y)[0].dims(), (std::vector<int64_t>{0, 0, 3}));
}

TEST(ImageDecoder, BadPixelFormatIsNamed) {
  auto y = decode(bmp_2x2(), "CMYK");
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status().message().find("pixel_format must be RGB, BGR or Grayscale, got 'CMYK'"), std::string::npos)
      << y.status().message();
}

}  // namespace kiln::testing
