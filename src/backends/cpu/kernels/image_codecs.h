// ImageDecoder's decoders, one per format. Each fills `out` with interleaved 8-bit pixels, 1
// (gray) or 3 (RGB) channels, and returns false for a stream it cannot decode (the kernel then
// returns the empty [0, 0, C] image the spec asks for). The library-backed ones (image_codecs.cc)
// exist only where CMake found the library; image_codec_missing() names the library a format
// lacks in this build, or returns null.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::cpu {

struct DecodedImage {
  int64_t height = 0, width = 0;
  int channels = 0;  // 1 or 3
  std::vector<uint8_t> pixels;
};

enum class ImageFormat { kUnknown, kJpeg, kPng, kBmp, kPnm, kTiff, kWebp, kJpeg2000 };

const char* image_codec_missing(ImageFormat f);

bool decode_jpeg(const uint8_t* data, size_t size, DecodedImage& out);
bool decode_png(const uint8_t* data, size_t size, DecodedImage& out);
bool decode_tiff(const uint8_t* data, size_t size, DecodedImage& out);
bool decode_webp(const uint8_t* data, size_t size, DecodedImage& out);
bool decode_jpeg2000(const uint8_t* data, size_t size, DecodedImage& out);

}  // namespace kiln::cpu
