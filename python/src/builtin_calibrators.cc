// kiln.ImageCalibrator and kiln.TensorFileCalibrator: the C++ built-in calibration sources
// (include/kiln/calibrator.h createImageCalibrator / createTensorFileCalibrator) as Python
// classes usable as IBuilderConfig.int8_calibrator, with an optional cache file in TensorRT's text
// format: read when it exists (then nothing is calibrated), written after a calibration (a
// temporary file renamed over it, so a failed write leaves no half-written cache).
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "bindings.h"

namespace kiln::python {

namespace {

class BuiltinCalibrator : public Int8Calibrator {
 public:
  BuiltinCalibrator(std::unique_ptr<Int8Calibrator> inner, std::string cache_file)
      : inner_(std::move(inner)), cache_file_(std::move(cache_file)) {}
  int getBatchSize() const noexcept override { return inner_->getBatchSize(); }
  bool getBatch(void* bindings[], const char* names[], int n) noexcept override { return inner_->getBatch(bindings, names, n); }
  const void* readCalibrationCache(size_t& length) noexcept override {
    length = 0;
    if (cache_file_.empty()) return nullptr;
    std::ifstream f(cache_file_, std::ios::binary);
    if (!f) return nullptr;  // no cache yet: calibrate
    cache_.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    length = cache_.size();
    return cache_.empty() ? nullptr : cache_.data();
  }
  void writeCalibrationCache(const void* cache, size_t length) noexcept override {
    write_error_.clear();
    if (cache_file_.empty()) return;
    const std::string tmp = cache_file_ + ".kiln-tmp";
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (f) f.write(static_cast<const char*>(cache), std::streamsize(length));
    f.close();
    if (!f || std::rename(tmp.c_str(), cache_file_.c_str()) != 0) {
      std::remove(tmp.c_str());
      write_error_ = "cannot write the calibration cache '" + cache_file_ + "'";
    }
  }
  CalibrationAlgoType getAlgorithm() noexcept override { return inner_->getAlgorithm(); }
  double getQuantile() const noexcept override { return inner_->getQuantile(); }
  const char* getLastError() const noexcept override { return inner_->getLastError(); }
  const char* getCacheSource() const noexcept override { return cache_file_.empty() ? nullptr : cache_file_.c_str(); }
  const std::string& cache_file() const { return cache_file_; }
  const std::string& write_error() const { return write_error_; }

 private:
  std::unique_ptr<Int8Calibrator> inner_;
  std::string cache_file_;
  std::string cache_;
  std::string write_error_;
};

struct PyImageCalibrator : BuiltinCalibrator {
  using BuiltinCalibrator::BuiltinCalibrator;
};
struct PyTensorFileCalibrator : BuiltinCalibrator {
  using BuiltinCalibrator::BuiltinCalibrator;
};

ImageCalibratorOptions::Resize resize_of(const std::string& s) {
  if (s == "center_crop") return ImageCalibratorOptions::Resize::kRESIZE_CENTER_CROP;
  if (s == "letterbox") return ImageCalibratorOptions::Resize::kLETTERBOX;
  if (s == "none") return ImageCalibratorOptions::Resize::kNONE;
  raise(PyExc_ValueError, "ImageCalibrator: resize must be 'center_crop', 'letterbox' or 'none', got '" + s + "'");
}

void three(const std::vector<float>& v, float out[3], const char* what) {
  if (v.size() != 1 && v.size() != 3)
    raise(PyExc_ValueError, std::string("ImageCalibrator: ") + what + " must have 1 or 3 values, got " + std::to_string(v.size()));
  for (int i = 0; i < 3; ++i) out[i] = v[v.size() == 1 ? 0 : size_t(i)];
}

template <class T>
void bind_common(nb::class_<T, Int8Calibrator>& c) {
  c.def_prop_ro("cache_file", [](const T& t) { return t.cache_file(); }, "The cache file ('' for none).")
      .def_prop_ro("cache_write_error", [](const T& t) { return t.write_error(); },
                   "Why the last cache write failed ('' when it did not): the engine is built either way.")
      .def("get_batch_size", &T::getBatchSize, "The batch size (dim 0 of the batch shape).")
      .def("get_algorithm", [](T& t) { return int(t.getAlgorithm()); }, "The calibration algorithm (CalibrationAlgoType).");
}

}  // namespace

void bind_builtin_calibrators(nb::module_& m) {
  auto image = nb::class_<PyImageCalibrator, Int8Calibrator>(m, "ImageCalibrator",
      "kiln's built-in INT8 calibrator over a folder of PNG/JPEG images (sorted by name): each is resized "
      "(center_crop: short side to the target, then the center; letterbox: whole image, padded with pad_value; "
      "none: must be the input's size), converted to RGB or BGR, normalized as (pixel / 255 - mean) / std per "
      "channel and laid out NCHW or NHWC into batches of `shape` (dim 0 is the batch; a last partial batch is "
      "dropped). With cache_file, an existing cache (TensorRT's text format) is used instead of calibrating, "
      "and a new one is written after calibrating. Set it as IBuilderConfig.int8_calibrator.");
  image.def("__init__", [](PyImageCalibrator* self, const std::string& directory, const std::string& input, nb::handle shape,
                           const std::string& layout, const std::string& resize, bool bgr, std::vector<float> mean,
                           std::vector<float> std, int pad_value, std::vector<std::string> extensions, int max_images,
                           int max_batches, int algorithm, double quantile, const std::string& cache_file) {
        ImageCalibratorOptions o;
        o.directory = directory;
        o.input.name = input;
        o.input.shape = to_dims(shape, "ImageCalibrator shape");
        if (layout != "NCHW" && layout != "NHWC") raise(PyExc_ValueError, "ImageCalibrator: layout must be 'NCHW' or 'NHWC', got '" + layout + "'");
        o.nhwc = layout == "NHWC";
        o.resize = resize_of(resize);
        o.bgr = bgr;
        three(mean, o.mean, "mean");
        three(std, o.std, "std");
        o.pad_value = pad_value;
        o.extensions = std::move(extensions);
        o.max_images = max_images;
        o.max_batches = max_batches;
        o.algorithm = static_cast<CalibrationAlgoType>(algorithm);
        o.quantile = quantile;
        std::string error;
        auto inner = createImageCalibrator(o, &error);
        if (!inner) raise(PyExc_ValueError, "ImageCalibrator: " + error);
        new (self) PyImageCalibrator(std::move(inner), cache_file);
      }, nb::arg("directory"), nb::arg("input"), nb::arg("shape"), nb::kw_only(), nb::arg("layout") = "NCHW",
      nb::arg("resize") = "center_crop", nb::arg("bgr") = false, nb::arg("mean") = std::vector<float>{0.f},
      nb::arg("std") = std::vector<float>{1.f}, nb::arg("pad_value") = 114,
      nb::arg("extensions") = std::vector<std::string>{"png", "jpg", "jpeg"}, nb::arg("max_images") = 0,
      nb::arg("max_batches") = 0, nb::arg("algorithm") = 2, nb::arg("quantile") = 99.99, nb::arg("cache_file") = "",
      "directory, the network input's name and its batch shape (e.g. (8, 3, 224, 224)); ValueError for an empty "
      "folder, an unusable shape or a bad option.");
  bind_common(image);

  auto files = nb::class_<PyTensorFileCalibrator, Int8Calibrator>(m, "TensorFileCalibrator",
      "kiln's built-in INT8 calibrator over tensor files: .npy (the input's dtype) or .bin (raw little-endian "
      "elements, as kiln --loadInputs), one batch or one sample a file, grouped into batches of each input's "
      "shape. One input: the files of `directory` (or `directory/<name>/`); several: `directory/<name>/` each, "
      "matched in name order. cache_file as for ImageCalibrator.");
  files.def("__init__", [](PyTensorFileCalibrator* self, const std::string& directory, nb::handle inputs, int max_batches,
                           int algorithm, double quantile, const std::string& cache_file) {
        TensorFileCalibratorOptions o;
        o.directory = directory;
        for (auto item : nb::iter(inputs)) {
          nb::sequence t = nb::borrow<nb::sequence>(item);
          const size_t n = nb::len(t);
          if (n != 2 && n != 3) raise(PyExc_ValueError, "TensorFileCalibrator: each input is (name, shape) or (name, shape, DataType)");
          CalibrationInput in;
          in.name = nb::cast<std::string>(t[0]);
          in.shape = to_dims(t[1], "TensorFileCalibrator shape");
          if (n == 3) in.type = nb::cast<TensorType>(t[2]);
          o.inputs.push_back(std::move(in));
        }
        o.max_batches = max_batches;
        o.algorithm = static_cast<CalibrationAlgoType>(algorithm);
        o.quantile = quantile;
        std::string error;
        auto inner = createTensorFileCalibrator(o, &error);
        if (!inner) raise(PyExc_ValueError, "TensorFileCalibrator: " + error);
        new (self) PyTensorFileCalibrator(std::move(inner), cache_file);
      }, nb::arg("directory"), nb::arg("inputs"), nb::kw_only(), nb::arg("max_batches") = 0, nb::arg("algorithm") = 2,
      nb::arg("quantile") = 99.99, nb::arg("cache_file") = "",
      "directory and the inputs as [(name, batch shape[, DataType])]; ValueError for an empty folder, no input or "
      "an unusable shape.");
  bind_common(files);
}

}  // namespace kiln::python
