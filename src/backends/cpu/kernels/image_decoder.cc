// CPU kernel of ImageDecoder (opset 20): sniffs the format from the stream's first bytes,
// decodes it (BMP and PNM here, the rest through the libraries in image_codecs.cc) and writes an
// HWC uint8 image in pixel_format RGB, BGR or Grayscale. As the spec asks, a stream that cannot
// be decoded (corrupt, or no known format) gives an empty [0, 0, C] tensor; a known format whose
// library this build lacks fails with "built without <lib>". Grayscale from color uses Pillow's
// ITU-R 601-2 luma in 16-bit fixed point (L = (19595 R + 38470 G + 7471 B + 32768) >> 16), the
// conversion the onnx reference (Image.convert("L")) applies; gray images give R = G = B for RGB.
#include <cctype>
#include <cstring>
#include <string>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/image_codecs.h"

namespace kiln::cpu {

namespace {

ImageFormat sniff(const uint8_t* p, size_t n) {
  auto starts = [&](const char* sig, size_t len) { return n >= len && std::memcmp(p, sig, len) == 0; };
  if (starts("\xFF\xD8\xFF", 3)) return ImageFormat::kJpeg;
  if (starts("\x89PNG\r\n\x1A\n", 8)) return ImageFormat::kPng;
  if (starts("BM", 2)) return ImageFormat::kBmp;
  if (n >= 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '6') return ImageFormat::kPnm;
  if (starts("II*\0", 4) || starts("MM\0*", 4)) return ImageFormat::kTiff;
  if (n >= 12 && starts("RIFF", 4) && std::memcmp(p + 8, "WEBP", 4) == 0) return ImageFormat::kWebp;
  if (starts("\0\0\0\x0CjP  \r\n\x87\n", 12) || starts("\xFF\x4F\xFF\x51", 4)) return ImageFormat::kJpeg2000;
  return ImageFormat::kUnknown;
}

uint32_t le(const uint8_t* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

// Uncompressed BMP (BI_RGB; BI_BITFIELDS with the usual 8-bit masks): 1/4/8-bit palette, 24 and
// 32-bit BGR(X). Rows are bottom-up unless the height is negative.
bool decode_bmp(const uint8_t* p, size_t n, DecodedImage& out) {
  if (n < 54) return false;
  const uint32_t offset = le(p + 10, 4), dib = le(p + 14, 4);
  if (dib < 40 || 14 + static_cast<size_t>(dib) > n) return false;
  const int32_t w = static_cast<int32_t>(le(p + 18, 4)), h_raw = static_cast<int32_t>(le(p + 22, 4));
  const uint32_t bpp = le(p + 28, 2), compression = le(p + 30, 4);
  if (w <= 0 || h_raw == 0 || h_raw == INT32_MIN || w > (1 << 16)) return false;
  if (compression != 0 && !(compression == 3 && bpp == 32)) return false;
  const bool top_down = h_raw < 0;
  const int64_t h = top_down ? -static_cast<int64_t>(h_raw) : h_raw;
  if (h > (1 << 16) || (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24 && bpp != 32)) return false;
  const size_t stride = ((static_cast<size_t>(w) * bpp + 31) / 32) * 4;
  if (offset > n || stride * static_cast<size_t>(h) > n - offset) return false;
  std::vector<uint8_t> palette;  // BGRA entries
  if (bpp <= 8) {
    size_t colors = le(p + 46, 4);
    if (colors == 0 || colors > (1u << bpp)) colors = 1u << bpp;
    const size_t at = 14 + dib;
    if (at + colors * 4 > offset) return false;
    palette.assign(p + at, p + at + colors * 4);
  }
  out.width = w;
  out.height = h;
  out.channels = 3;
  out.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* row = p + offset + stride * static_cast<size_t>(top_down ? y : h - 1 - y);
    uint8_t* dst = &out.pixels[static_cast<size_t>(y * w) * 3];
    for (int32_t x = 0; x < w; ++x, dst += 3) {
      const uint8_t* bgr;
      if (bpp <= 8) {
        const size_t bit = static_cast<size_t>(x) * bpp;
        const unsigned idx = (row[bit / 8] >> (8 - bpp - bit % 8)) & ((1u << bpp) - 1);
        if (idx * 4 >= palette.size()) return false;
        bgr = &palette[idx * 4];
      } else {
        bgr = row + static_cast<size_t>(x) * (bpp / 8);
      }
      dst[0] = bgr[2];
      dst[1] = bgr[1];
      dst[2] = bgr[0];
    }
  }
  return true;
}

// PNM: P1-P3 (plain text) and P4-P6 (binary) bitmaps, graymaps and pixmaps, maxval up to 65535.
struct PnmReader {
  const uint8_t* p;
  size_t n, at = 2;
  bool skip_space() {
    while (at < n && (std::isspace(p[at]) || p[at] == '#')) {
      if (p[at] == '#')
        while (at < n && p[at] != '\n') ++at;
      else
        ++at;
    }
    return at < n;
  }
  bool number(int64_t& v, bool single_digit = false) {
    if (!skip_space() || !std::isdigit(p[at])) return false;
    v = 0;
    do {
      v = v * 10 + (p[at++] - '0');
      if (v > (1 << 20)) return false;
    } while (!single_digit && at < n && std::isdigit(p[at]));
    return true;
  }
};

bool decode_pnm(const uint8_t* p, size_t n, DecodedImage& out) {
  const int kind = p[1] - '0';
  PnmReader r{p, n};
  int64_t w = 0, h = 0, maxval = 1;
  if (!r.number(w) || !r.number(h) || w <= 0 || h <= 0 || w > (1 << 16) || h > (1 << 16)) return false;
  const bool bitmap = kind == 1 || kind == 4;
  if (!bitmap && (!r.number(maxval) || maxval < 1 || maxval > 65535)) return false;
  const int channels = kind == 3 || kind == 6 ? 3 : 1;
  out.width = w;
  out.height = h;
  out.channels = channels;
  const size_t count = static_cast<size_t>(w * h) * channels;
  out.pixels.resize(count);
  auto scale = [&](int64_t v) -> uint8_t {
    if (v > maxval) v = maxval;
    return static_cast<uint8_t>((v * 255 + maxval / 2) / maxval);
  };
  if (kind <= 3) {  // plain: whitespace-separated numbers (bitmaps may run their digits together)
    for (size_t i = 0; i < count; ++i) {
      int64_t v = 0;
      if (!r.number(v, bitmap)) return false;
      out.pixels[i] = bitmap ? (v ? 0 : 255) : scale(v);
    }
    return true;
  }
  ++r.at;  // the single whitespace after the header
  if (kind == 4) {
    const size_t stride = static_cast<size_t>((w + 7) / 8);
    if (r.at > n || stride * h > n - r.at) return false;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        out.pixels[y * w + x] = (p[r.at + y * stride + x / 8] >> (7 - x % 8)) & 1 ? 0 : 255;
    return true;
  }
  const size_t bytes = maxval > 255 ? 2 : 1;
  if (r.at > n || count * bytes > n - r.at) return false;
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* q = p + r.at + i * bytes;
    out.pixels[i] = scale(bytes == 2 ? (q[0] << 8 | q[1]) : q[0]);
  }
  return true;
}

Status image_decoder(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  if (in.dtype() != DataType::kUInt8 || in.rank() != 1)
    return ctx.fail("input '", ctx.node().inputs[0]->name, "' must be a 1-D uint8 stream, got ", in.describe());
  const std::string fmt = ctx.node().attr_string("pixel_format", "RGB");
  if (fmt != "RGB" && fmt != "BGR" && fmt != "Grayscale")
    return ctx.fail("pixel_format must be RGB, BGR or Grayscale, got '", fmt, "'");
  const int64_t c = fmt == "Grayscale" ? 1 : 3;
  const uint8_t* data = in.data<uint8_t>();
  const size_t size = static_cast<size_t>(in.numel());
  const ImageFormat f = sniff(data, size);
  if (const char* lib = image_codec_missing(f))
    return ctx.fail("input '", ctx.node().inputs[0]->name, "' is a format this build cannot decode: built without ",
                    lib);
  DecodedImage img;
  bool ok = false;
  switch (f) {
    case ImageFormat::kJpeg: ok = decode_jpeg(data, size, img); break;
    case ImageFormat::kPng: ok = decode_png(data, size, img); break;
    case ImageFormat::kBmp: ok = decode_bmp(data, size, img); break;
    case ImageFormat::kPnm: ok = decode_pnm(data, size, img); break;
    case ImageFormat::kTiff: ok = decode_tiff(data, size, img); break;
    case ImageFormat::kWebp: ok = decode_webp(data, size, img); break;
    case ImageFormat::kJpeg2000: ok = decode_jpeg2000(data, size, img); break;
    case ImageFormat::kUnknown: break;
  }
  ok = ok && (img.channels == 1 || img.channels == 3) &&
       img.pixels.size() == static_cast<size_t>(img.height * img.width * img.channels);
  if (!ok) img = DecodedImage{};
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, DataType::kUInt8, {img.height, img.width, c}));
  uint8_t* dst = out->mutable_data<uint8_t>();
  const size_t pixels = static_cast<size_t>(img.height * img.width);
  const uint8_t* src = img.pixels.data();
  const bool bgr = fmt == "BGR";
  for (size_t i = 0; i < pixels; ++i) {
    if (img.channels == 1) {
      for (int64_t k = 0; k < c; ++k) dst[i * c + k] = src[i];
      continue;
    }
    const uint8_t r = src[3 * i], g = src[3 * i + 1], b = src[3 * i + 2];
    if (c == 1) {
      dst[i] = static_cast<uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
    } else {
      dst[3 * i] = bgr ? b : r;
      dst[3 * i + 1] = g;
      dst[3 * i + 2] = bgr ? r : b;
    }
  }
  return Status::ok();
}

}  // namespace

void register_image_kernels(KernelTable& t) { t.add("", "ImageDecoder", image_decoder); }

}  // namespace kiln::cpu
