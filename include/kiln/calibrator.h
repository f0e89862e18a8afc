// kiln public API: INT8 calibration, shaped like TensorRT's IInt8Calibrator family. The builder
// (BuilderFlag::kINT8 with BuilderConfig::setInt8Calibrator) first asks readCalibrationCache();
// a cache in TensorRT's text format that names tensors of the network is used as it is, with no
// calibration. Otherwise it runs the network in float32 over the batches getBatch() hands out,
// computes one scale per tensor with getAlgorithm()'s method and gives the cache it made to
// writeCalibrationCache().
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/types.h"

namespace kiln {

// TensorRT's values, then kiln's own methods.
enum class CalibrationAlgoType : int32_t {
  kLEGACY_CALIBRATION = 0,     // computed as kPERCENTILE_CALIBRATION with getQuantile()
  kENTROPY_CALIBRATION = 1,    // computed as kENTROPY_CALIBRATION_2
  kENTROPY_CALIBRATION_2 = 2,  // KL divergence over a 2048-bin histogram (TensorRT's default)
  kMINMAX_CALIBRATION = 3,     // the absolute maximum
  kPERCENTILE_CALIBRATION = 100,  // kiln: the getQuantile() percentile of |x| (99.99 by default)
  kMSE_CALIBRATION = 101,         // kiln: the threshold of least mean squared quantization error
};
// The algorithm's name in a cache header ("EntropyCalibration2", "MinMaxCalibration", ...).
const char* calibrationAlgoName(CalibrationAlgoType a);

class Int8Calibrator {
 public:
  virtual ~Int8Calibrator() = default;
  // Informational for explicit-batch networks (as in TensorRT): the batch shape is the
  // calibration profile's opt shape (setCalibrationProfile), else profile 0's, else the static one.
  virtual int getBatchSize() const noexcept = 0;
  // Fills bindings[i] with host memory holding input names[i] at the calibration shape (on the
  // CPU: calibration runs on the CPU backend). False when there is no more data (or on an
  // error, then getLastError() says which).
  virtual bool getBatch(void* bindings[], const char* names[], int nbBindings) noexcept = 0;
  // The cache to use instead of calibrating, or null (length 0) when there is none.
  virtual const void* readCalibrationCache(size_t& length) noexcept = 0;
  virtual void writeCalibrationCache(const void* cache, size_t length) noexcept = 0;
  virtual CalibrationAlgoType getAlgorithm() noexcept { return CalibrationAlgoType::kENTROPY_CALIBRATION_2; }
  // For kPERCENTILE_CALIBRATION / kLEGACY_CALIBRATION: the percentile of |x| kept (TensorRT's
  // legacy calibrator's name).
  virtual double getQuantile() const noexcept { return 99.99; }
  // kiln: why the last getBatch() returned false (an unreadable file, ...), null at the end of
  // the data. The builder fails with this message.
  virtual const char* getLastError() const noexcept { return nullptr; }
  // kiln: where the cache comes from (a file's path), for errors; null: "the calibration cache".
  virtual const char* getCacheSource() const noexcept { return nullptr; }
};
using Calibrator = Int8Calibrator;

class Int8EntropyCalibrator2 : public Int8Calibrator {
 public:
  CalibrationAlgoType getAlgorithm() noexcept override { return CalibrationAlgoType::kENTROPY_CALIBRATION_2; }
};
class Int8MinMaxCalibrator : public Int8Calibrator {
 public:
  CalibrationAlgoType getAlgorithm() noexcept override { return CalibrationAlgoType::kMINMAX_CALIBRATION; }
};

// Where one network input's calibration data comes from, and its batch shape.
struct CalibrationInput {
  std::string name;
  TensorType type = TensorType::kFLOAT;  // images: kFLOAT only
  Dims shape;                            // the batch shape, no -1 (e.g. 8x3x224x224)
};

// A built-in calibration data source: a directory of images for one image input.
struct ImageCalibratorOptions {
  std::string directory;
  std::vector<std::string> extensions = {"png", "jpg", "jpeg"};  // case-insensitive
  CalibrationInput input;  // NCHW, or NHWC with `nhwc`; C is 1 or 3
  bool nhwc = false;
  // kNONE: every image must already be the input's size; kRESIZE_CENTER_CROP: resize the short
  // side to the target's (bilinear), then crop the center; kLETTERBOX: fit the whole image,
  // pad with `pad_value` (0..255).
  enum class Resize { kNONE, kRESIZE_CENTER_CROP, kLETTERBOX } resize = Resize::kRESIZE_CENTER_CROP;
  bool bgr = false;  // channel order of the input
  // Each channel: (pixel / 255 - mean) / std, in the input's channel order.
  float mean[3] = {0.f, 0.f, 0.f};
  float std[3] = {1.f, 1.f, 1.f};
  int pad_value = 114;
  int max_images = 0;   // 0: all (sorted by name); a last partial batch is dropped
  int max_batches = 0;  // 0: all
  CalibrationAlgoType algorithm = CalibrationAlgoType::kENTROPY_CALIBRATION_2;
  double quantile = 99.99;
};

// A built-in calibration data source: tensor files, per input, in --loadInputs' raw format (.bin:
// little-endian elements of the input's type) or .npy (its dtype must be the input's). A file
// holds one batch (the batch shape) or one sample (the shape without dim 0, or with it at 1);
// samples are grouped into batches. One input: the files of `directory` (or of
// `directory/<name>/`); several: `directory/<name>/` each, matched in name order.
struct TensorFileCalibratorOptions {
  std::string directory;
  std::vector<CalibrationInput> inputs;
  int max_batches = 0;  // 0: all
  CalibrationAlgoType algorithm = CalibrationAlgoType::kENTROPY_CALIBRATION_2;
  double quantile = 99.99;
};

// Null with the reason in `error` for an empty directory, no input, an unusable shape. Files
// are checked as they are read (getBatch() fails, getLastError() names the file). These
// sources have no cache (readCalibrationCache gives null; writeCalibrationCache drops it).
std::unique_ptr<Int8Calibrator> createImageCalibrator(const ImageCalibratorOptions& options, std::string* error);
std::unique_ptr<Int8Calibrator> createTensorFileCalibrator(const TensorFileCalibratorOptions& options,
                                                           std::string* error);

}  // namespace kiln
