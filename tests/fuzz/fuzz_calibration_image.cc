// libFuzzer target: the PNG and JPEG decoders behind --calibImages (quant/image_calibrator.cc,
// through backends/cpu/kernels/image_codecs.h). Contract: a decoder returns false, or an image of
// 1 or 3 channels whose pixel buffer is exactly height x width x channels (the calibrator checks
// the same and refuses anything else with one error).
// Seeds: tests/fuzz/corpus/fuzz_calibration_image (a 3x2 PNG and JPEG).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/kernels/image_codecs.h"

namespace {
[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz_calibration_image: %s\n", what);
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::cpu;
  const bool png = size >= 8 && std::memcmp(data, "\x89PNG\r\n\x1A\n", 8) == 0;
  const ImageFormat f = png ? ImageFormat::kPng : ImageFormat::kJpeg;
  if (image_codec_missing(f)) return 0;
  DecodedImage img;
  if (!(png ? decode_png(data, size, img) : decode_jpeg(data, size, img))) return 0;
  if (img.height < 0 || img.width < 0) broken("negative dims");
  if (img.channels == 1 || img.channels == 3) {
    if (img.pixels.size() != static_cast<size_t>(img.height * img.width * img.channels))
      broken("the pixel buffer is not height x width x channels");
  }
  return 0;
}
