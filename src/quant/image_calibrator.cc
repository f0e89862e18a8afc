// The image-directory calibration source (createImageCalibrator): PNG and JPEG files decoded by
// ImageDecoder's codecs, resized (bilinear, resize + center crop, or letterbox) to the input's
// height and width, normalized ((p / 255 - mean) / std per channel) and laid out NCHW or NHWC in
// RGB or BGR order, a batch at a time.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/kernels/image_codecs.h"
#include "kiln/calibrator.h"
#include "quant/calibration_files.h"

namespace kiln {

namespace {

using Resize = ImageCalibratorOptions::Resize;

Expected<cpu::DecodedImage> decode(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, quant::read_file(path));
  cpu::DecodedImage img;
  const bool png = bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1A\n", 8) == 0;
  const bool jpeg = bytes.size() >= 3 && std::memcmp(bytes.data(), "\xFF\xD8\xFF", 3) == 0;
  if (!png && !jpeg) return err("cannot read image '", path, "': not a PNG or JPEG file");
  const cpu::ImageFormat f = png ? cpu::ImageFormat::kPng : cpu::ImageFormat::kJpeg;
  if (const char* lib = cpu::image_codec_missing(f)) return err("cannot read image '", path, "': built without ", lib);
  const bool ok = png ? cpu::decode_png(bytes.data(), bytes.size(), img) : cpu::decode_jpeg(bytes.data(), bytes.size(), img);
  if (!ok || (img.channels != 1 && img.channels != 3) || img.height <= 0 || img.width <= 0 ||
      img.pixels.size() != static_cast<size_t>(img.height * img.width * img.channels))
    return err("cannot read image '", path, "': corrupt or undecodable ", png ? "PNG" : "JPEG");
  return img;
}

class ImageCalibrator : public quant::DataSourceCalibrator {
 public:
  ImageCalibrator(ImageCalibratorOptions o, std::vector<std::string> files) : DataSourceCalibrator(o.algorithm, o.quantile), o_(std::move(o)), files_(std::move(files)) {
    const Dims& s = o_.input.shape;
    n_ = s[0];
    c_ = o_.nhwc ? s[3] : s[1];
    h_ = o_.nhwc ? s[1] : s[2];
    w_ = o_.nhwc ? s[2] : s[3];
    buffer_.resize(static_cast<size_t>(n_ * c_ * h_ * w_));
  }
  int getBatchSize() const noexcept override { return static_cast<int>(n_); }

  bool getBatch(void* bindings[], const char* names[], int nb) noexcept override {
    error_.clear();
    if (next_ + static_cast<size_t>(n_) > files_.size()) return false;
    if (o_.max_batches > 0 && batches_ >= o_.max_batches) return false;
    try {
      for (int64_t b = 0; b < n_; ++b) {
        auto img = decode(files_[next_ + b]);
        if (!img) return fail(img.status().message());
        Status s = place(*img, files_[next_ + b], b);
        if (!s) return fail(s.message());
      }
    } catch (const std::exception& e) {
      return fail(std::string("image calibration: ") + e.what());
    }
    next_ += static_cast<size_t>(n_);
    ++batches_;
    for (int i = 0; i < nb; ++i)
      if (o_.input.name == names[i]) bindings[i] = buffer_.data();
    return true;
  }

 private:
  // The pixel (as 0..255 floats, in RGB order) at image coordinates (y, x), bilinear.
  void sample(const cpu::DecodedImage& img, double y, double x, float rgb[3]) const {
    y = std::clamp(y, 0.0, double(img.height - 1));
    x = std::clamp(x, 0.0, double(img.width - 1));
    const int64_t y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(x);
    const int64_t y1 = std::min(y0 + 1, img.height - 1), x1 = std::min(x0 + 1, img.width - 1);
    const double fy = y - y0, fx = x - x0;
    for (int c = 0; c < 3; ++c) {
      const int ch = img.channels == 1 ? 0 : c;
      auto at = [&](int64_t yy, int64_t xx) { return double(img.pixels[(yy * img.width + xx) * img.channels + ch]); };
      rgb[c] = static_cast<float>((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
                                  fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1)));
    }
  }

  Status place(const cpu::DecodedImage& img, const std::string& path, int64_t b) {
    double scale = 1, off_y = 0, off_x = 0;  // output pixel -> image: ((y - off) + 0.5) / scale - 0.5
    if (o_.resize == Resize::kNONE) {
      if (img.height != h_ || img.width != w_)
        return err("image '", path, "' is ", img.width, "x", img.height, " (WxH) but input '", o_.input.name, "' takes ",
                   w_, "x", h_, " and no resize rule is set (--calibResize=crop|letterbox)");
    } else if (o_.resize == Resize::kRESIZE_CENTER_CROP) {
      scale = std::max(double(h_) / img.height, double(w_) / img.width);
      off_y = -(std::round(img.height * scale) - h_) / 2;
      off_x = -(std::round(img.width * scale) - w_) / 2;
    } else {
      scale = std::min(double(h_) / img.height, double(w_) / img.width);
      off_y = (h_ - std::round(img.height * scale)) / 2;
      off_x = (w_ - std::round(img.width * scale)) / 2;
    }
    const double in_h = std::round(img.height * scale), in_w = std::round(img.width * scale);
    for (int64_t y = 0; y < h_; ++y)
      for (int64_t x = 0; x < w_; ++x) {
        float rgb[3];
        const double ry = y - std::floor(off_y), rx = x - std::floor(off_x);  // in the resized image
        if (o_.resize == Resize::kLETTERBOX && (ry < 0 || rx < 0 || ry >= in_h || rx >= in_w)) {
          rgb[0] = rgb[1] = rgb[2] = static_cast<float>(o_.pad_value);
        } else if (o_.resize == Resize::kNONE) {
          sample(img, double(y), double(x), rgb);
        } else {
          sample(img, (ry + 0.5) * img.height / in_h - 0.5, (rx + 0.5) * img.width / in_w - 0.5, rgb);
        }
        float px[3] = {rgb[0], rgb[1], rgb[2]};
        if (c_ == 1) px[0] = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
        else if (o_.bgr) std::swap(px[0], px[2]);
        for (int64_t c = 0; c < c_; ++c) {
          const float v = (px[c] / 255.f - o_.mean[c]) / o_.std[c];
          const size_t i = o_.nhwc ? static_cast<size_t>(((b * h_ + y) * w_ + x) * c_ + c)
                                   : static_cast<size_t>(((b * c_ + c) * h_ + y) * w_ + x);
          buffer_[i] = v;
        }
      }
    return Status::ok();
  }

  ImageCalibratorOptions o_;
  std::vector<std::string> files_;
  int64_t n_ = 0, c_ = 0, h_ = 0, w_ = 0;
  size_t next_ = 0;
  int batches_ = 0;
  std::vector<float> buffer_;
};

}  // namespace

std::unique_ptr<Int8Calibrator> createImageCalibrator(const ImageCalibratorOptions& o, std::string* error) {
  auto fail = [&](const std::string& m) -> std::unique_ptr<Int8Calibrator> {
    if (error) *error = m;
    return nullptr;
  };
  const Dims& s = o.input.shape;
  if (o.input.type != TensorType::kFLOAT)
    return fail("image calibration: input '" + o.input.name + "' is " + tensorTypeName(o.input.type) +
                "; images feed float32 inputs only");
  if (s.size() != 4 || std::any_of(s.begin(), s.end(), [](int64_t d) { return d <= 0; }))
    return fail("image calibration: input '" + o.input.name + "' needs a 4-D batch shape (" +
                (o.nhwc ? "NHWC" : "NCHW") + ") without dynamic dims, got " + dimsToString(s));
  const int64_t c = o.nhwc ? s[3] : s[1];
  if (c != 1 && c != 3)
    return fail("image calibration: input '" + o.input.name + "' " + dimsToString(s) + " has " + std::to_string(c) +
                " channels in " + (o.nhwc ? "NHWC" : "NCHW") + " (1 or 3 expected; --calibLayout=nhwc?)");
  for (int k = 0; k < 3; ++k)
    if (!(o.std[k] != 0) || !std::isfinite(o.std[k]) || !std::isfinite(o.mean[k]))
      return fail("image calibration: mean and std must be finite and std non-zero");
  auto files = quant::list_files(o.directory, o.extensions);
  if (!files) return fail("image calibration: " + files.status().message());
  std::string exts;
  for (const auto& e : o.extensions) exts += (exts.empty() ? "" : "/") + e;
  if (files->empty()) return fail("image calibration: no image (" + exts + ") in directory '" + o.directory + "'");
  if (o.max_images > 0 && files->size() > static_cast<size_t>(o.max_images)) files->resize(o.max_images);
  if (files->size() < static_cast<size_t>(s[0]))
    return fail("image calibration: '" + o.directory + "' has " + std::to_string(files->size()) +
                " images, fewer than one batch of " + std::to_string(s[0]));
  return std::make_unique<ImageCalibrator>(o, std::move(files).value());
}

}  // namespace kiln
