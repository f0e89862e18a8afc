// ImageDecoder's library-backed decoders: libjpeg(-turbo), libpng, libtiff, libwebp, openjpeg,
// each compiled where CMake found it (KILN_HAVE_<LIB>). JPEG uses libjpeg's defaults (islow
// DCT, fancy upsampling), as Pillow does, so the pixels match the onnx reference. The libraries'
// warnings and errors are silenced: a stream they reject is a corrupt stream.
#include "backends/cpu/kernels/image_codecs.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

#ifdef KILN_HAVE_JPEG
#include <jpeglib.h>
#endif
#ifdef KILN_HAVE_PNG
#include <png.h>
#endif
#ifdef KILN_HAVE_TIFF
#include <tiffio.h>
#endif
#ifdef KILN_HAVE_WEBP
#include <webp/decode.h>
#endif
#ifdef KILN_HAVE_OPENJP2
#include <openjpeg.h>
#endif

namespace kiln::cpu {

namespace {
// A decoded image over 512 MiB is refused before it is allocated: a header may declare any size
// (a 65,500 x 13,000 JPEG of a few bytes asked for 2.5 GB).
constexpr size_t kMaxDecodedBytes = size_t(512) << 20;
}  // namespace

const char* image_codec_missing(ImageFormat f) {
  switch (f) {
#ifndef KILN_HAVE_JPEG
    case ImageFormat::kJpeg: return "libjpeg";
#endif
#ifndef KILN_HAVE_PNG
    case ImageFormat::kPng: return "libpng";
#endif
#ifndef KILN_HAVE_TIFF
    case ImageFormat::kTiff: return "libtiff";
#endif
#ifndef KILN_HAVE_WEBP
    case ImageFormat::kWebp: return "libwebp";
#endif
#ifndef KILN_HAVE_OPENJP2
    case ImageFormat::kJpeg2000: return "libopenjp2";
#endif
    default: return nullptr;
  }
}

#ifdef KILN_HAVE_JPEG
namespace {
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
};
void jpeg_fail(j_common_ptr c) { std::longjmp(reinterpret_cast<JpegError*>(c->err)->jump, 1); }
void jpeg_quiet(j_common_ptr, int) {}
void jpeg_no_output(j_common_ptr) {}
}  // namespace

bool decode_jpeg(const uint8_t* data, size_t size, DecodedImage& out) {
  jpeg_decompress_struct info;
  JpegError e;
  info.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_fail;
  e.mgr.emit_message = jpeg_quiet;
  e.mgr.output_message = jpeg_no_output;
  out.pixels.clear();
  if (setjmp(e.jump)) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
  jpeg_read_header(&info, TRUE);
  info.out_color_space = info.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  out.width = info.output_width;
  out.height = info.output_height;
  out.channels = info.output_components;
  const size_t stride = static_cast<size_t>(out.width) * out.channels;
  if (stride * static_cast<size_t>(out.height) > kMaxDecodedBytes) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  out.pixels.resize(stride * static_cast<size_t>(out.height));
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out.pixels.data() + info.output_scanline * stride;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
}
#else
bool decode_jpeg(const uint8_t*, size_t, DecodedImage&) { return false; }
#endif

#ifdef KILN_HAVE_PNG
bool decode_png(const uint8_t* data, size_t size, DecodedImage& out) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, data, size)) return false;
  // Alpha (or tRNS) is read and then dropped, as Pillow's convert("RGB") does; letting libpng
  // remove it would composite onto a background instead.
  // 16-bit files are read as 16-bit (libpng's 8-bit output of them would gamma-encode, taking
  // them as linear) and scaled to 8 bits here, v * 255 / 65535 rounded.
  const bool color = img.format & PNG_FORMAT_FLAG_COLOR, alpha = img.format & PNG_FORMAT_FLAG_ALPHA;
  const bool wide = img.format & PNG_FORMAT_FLAG_LINEAR;
  img.format = (color ? PNG_FORMAT_FLAG_COLOR : 0) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0) |
               (wide ? PNG_FORMAT_FLAG_LINEAR : 0);
  out.width = img.width;
  out.height = img.height;
  out.channels = color ? 3 : 1;
  if (static_cast<size_t>(PNG_IMAGE_SIZE(img)) > kMaxDecodedBytes) {
    png_image_free(&img);
    return false;
  }
  std::vector<uint8_t> buf(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, buf.data(), 0, nullptr)) {
    png_image_free(&img);
    return false;
  }
  const size_t n = static_cast<size_t>(out.width) * out.height, in_ch = out.channels + (alpha ? 1 : 0);
  out.pixels.resize(n * out.channels);
  const auto* wide_buf = reinterpret_cast<const uint16_t*>(buf.data());
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < static_cast<size_t>(out.channels); ++c) {
      if (!wide) {
        out.pixels[i * out.channels + c] = buf[i * in_ch + c];
        continue;
      }
      uint32_t v = wide_buf[i * in_ch + c];
      if (alpha) {  // linear output with alpha comes premultiplied
        const uint32_t a = wide_buf[i * in_ch + out.channels];
        v = a ? (v * 65535u + a / 2) / a : 0;
        if (v > 65535) v = 65535;
      }
      out.pixels[i * out.channels + c] = static_cast<uint8_t>((v * 255u + 32767u) / 65535u);
    }
  return true;
}
#else
bool decode_png(const uint8_t*, size_t, DecodedImage&) { return false; }
#endif

#ifdef KILN_HAVE_TIFF
namespace {
struct MemFile {
  const uint8_t* data;
  toff_t size, pos;
};
tsize_t tiff_read(thandle_t h, tdata_t buf, tsize_t n) {
  auto* f = static_cast<MemFile*>(h);
  const toff_t left = f->pos < f->size ? f->size - f->pos : 0;
  const toff_t k = static_cast<toff_t>(n) < left ? static_cast<toff_t>(n) : left;
  std::memcpy(buf, f->data + f->pos, k);
  f->pos += k;
  return static_cast<tsize_t>(k);
}
tsize_t tiff_write(thandle_t, tdata_t, tsize_t) { return 0; }
toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
  auto* f = static_cast<MemFile*>(h);
  const toff_t base = whence == SEEK_CUR ? f->pos : whence == SEEK_END ? f->size : 0;
  f->pos = base + off;
  return f->pos;
}
int tiff_close(thandle_t) { return 0; }
toff_t tiff_size(thandle_t h) { return static_cast<MemFile*>(h)->size; }
int tiff_map(thandle_t, tdata_t*, toff_t*) { return 0; }
void tiff_unmap(thandle_t, tdata_t, toff_t) {}
}  // namespace

bool decode_tiff(const uint8_t* data, size_t size, DecodedImage& out) {
  static const bool quiet = [] {
    TIFFSetErrorHandler(nullptr);
    TIFFSetWarningHandler(nullptr);
    return true;
  }();
  (void)quiet;
  MemFile f{data, static_cast<toff_t>(size), 0};
  TIFF* tif = TIFFClientOpen("stream", "rm", &f, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size, tiff_map,
                             tiff_unmap);
  if (!tif) return false;
  uint32_t w = 0, h = 0;
  uint16_t samples = 1, photometric = PHOTOMETRIC_RGB;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &samples);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PHOTOMETRIC, &photometric);
  if (static_cast<size_t>(w) * h * 4 > kMaxDecodedBytes) {
    TIFFClose(tif);
    return false;
  }
  std::vector<uint32_t> raster(static_cast<size_t>(w) * h);
  const bool ok = w > 0 && h > 0 && TIFFReadRGBAImageOriented(tif, w, h, raster.data(), ORIENTATION_TOPLEFT, 0);
  TIFFClose(tif);
  if (!ok) return false;
  const bool gray = samples == 1 && (photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE);
  out.width = w;
  out.height = h;
  out.channels = gray ? 1 : 3;
  out.pixels.resize(raster.size() * out.channels);
  for (size_t i = 0; i < raster.size(); ++i) {
    if (gray) {
      out.pixels[i] = static_cast<uint8_t>(TIFFGetR(raster[i]));
      continue;
    }
    out.pixels[3 * i] = static_cast<uint8_t>(TIFFGetR(raster[i]));
    out.pixels[3 * i + 1] = static_cast<uint8_t>(TIFFGetG(raster[i]));
    out.pixels[3 * i + 2] = static_cast<uint8_t>(TIFFGetB(raster[i]));
  }
  return true;
}
#else
bool decode_tiff(const uint8_t*, size_t, DecodedImage&) { return false; }
#endif

#ifdef KILN_HAVE_WEBP
bool decode_webp(const uint8_t* data, size_t size, DecodedImage& out) {
  int w = 0, h = 0;
  if (!WebPGetInfo(data, size, &w, &h) || static_cast<size_t>(w) * h * 3 > kMaxDecodedBytes) return false;
  uint8_t* px = WebPDecodeRGB(data, size, &w, &h);
  if (!px) return false;
  out.width = w;
  out.height = h;
  out.channels = 3;
  out.pixels.assign(px, px + static_cast<size_t>(w) * h * 3);
  WebPFree(px);
  return true;
}
#else
bool decode_webp(const uint8_t*, size_t, DecodedImage&) { return false; }
#endif

#ifdef KILN_HAVE_OPENJP2
namespace {
struct MemStream {
  const uint8_t* data;
  OPJ_SIZE_T size, pos;
};
OPJ_SIZE_T jp2_read(void* buf, OPJ_SIZE_T n, void* user) {
  auto* s = static_cast<MemStream*>(user);
  if (s->pos >= s->size) return static_cast<OPJ_SIZE_T>(-1);
  const OPJ_SIZE_T k = n < s->size - s->pos ? n : s->size - s->pos;
  std::memcpy(buf, s->data + s->pos, k);
  s->pos += k;
  return k;
}
OPJ_OFF_T jp2_skip(OPJ_OFF_T n, void* user) {
  auto* s = static_cast<MemStream*>(user);
  if (n < 0 || s->pos + static_cast<OPJ_SIZE_T>(n) > s->size) return -1;
  s->pos += static_cast<OPJ_SIZE_T>(n);
  return n;
}
OPJ_BOOL jp2_seek(OPJ_OFF_T n, void* user) {
  auto* s = static_cast<MemStream*>(user);
  if (n < 0 || static_cast<OPJ_SIZE_T>(n) > s->size) return OPJ_FALSE;
  s->pos = static_cast<OPJ_SIZE_T>(n);
  return OPJ_TRUE;
}
}  // namespace

bool decode_jpeg2000(const uint8_t* data, size_t size, DecodedImage& out) {
  static const uint8_t kJp2[] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' '};
  const bool jp2 = size >= 8 && std::memcmp(data, kJp2, 8) == 0;
  MemStream ms{data, size, 0};
  opj_stream_t* stream = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
  opj_stream_set_user_data(stream, &ms, nullptr);
  opj_stream_set_user_data_length(stream, size);
  opj_stream_set_read_function(stream, jp2_read);
  opj_stream_set_skip_function(stream, jp2_skip);
  opj_stream_set_seek_function(stream, jp2_seek);
  opj_codec_t* codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  opj_image_t* img = nullptr;
  bool ok = opj_setup_decoder(codec, &params) && opj_read_header(stream, codec, &img);
  // OpenJPEG holds every sample as an int32: refuse a header declaring more than the limit.
  ok = ok && img->x1 > img->x0 && img->y1 > img->y0 &&
       static_cast<size_t>(img->x1 - img->x0) * (img->y1 - img->y0) * img->numcomps * 4 <= kMaxDecodedBytes;
  ok = ok && opj_decode(codec, stream, img) && opj_end_decompress(codec, stream);
  const int comps = ok ? static_cast<int>(img->numcomps) : 0;
  ok = ok && (comps == 1 || comps >= 3);
  for (int c = 0; ok && c < (comps == 1 ? 1 : 3); ++c)
    ok = img->comps[c].w == img->comps[0].w && img->comps[c].h == img->comps[0].h && img->comps[c].data &&
         img->comps[c].prec >= 1 && img->comps[c].prec <= 16;
  if (ok) {
    out.width = img->comps[0].w;
    out.height = img->comps[0].h;
    out.channels = comps == 1 ? 1 : 3;
    const size_t n = static_cast<size_t>(out.width) * out.height;
    out.pixels.resize(n * out.channels);
    for (int c = 0; c < out.channels; ++c) {
      const opj_image_comp_t& cp = img->comps[c];
      const int offset = cp.sgnd ? 1 << (cp.prec - 1) : 0;
      for (size_t i = 0; i < n; ++i) {
        int v = cp.data[i] + offset;
        v = cp.prec > 8 ? v >> (cp.prec - 8) : v << (8 - cp.prec);  // to 8 bits, as Pillow does
        out.pixels[i * out.channels + c] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
  if (img) opj_image_destroy(img);
  opj_destroy_codec(codec);
  opj_stream_destroy(stream);
  return ok;
}
#else
bool decode_jpeg2000(const uint8_t*, size_t, DecodedImage&) { return false; }
#endif

}  // namespace kiln::cpu
