#include "tools/kiln/calibration.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "tools/kiln/build.h"

namespace kiln::cli {

CliCalibrator::CliCalibrator(std::string cache_path, std::unique_ptr<Int8Calibrator> source, CalibrationAlgoType algo,
                             double quantile)
    : path_(std::move(cache_path)), source_(std::move(source)), algo_(algo), quantile_(quantile) {
  if (path_.empty()) return;
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) return;  // no cache yet: calibrate, then write it
  std::ifstream f(path_, std::ios::binary);
  if (!f) fail("--calib: cannot read calibration cache '", path_, "': ", std::strerror(errno));
  read_.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  if (read_.empty()) fail("--calib: calibration cache '", path_, "' is empty (delete it to calibrate again)");
}

const void* CliCalibrator::readCalibrationCache(size_t& length) noexcept {
  length = read_.size();
  return read_.empty() ? nullptr : read_.data();
}

void CliCalibrator::writeCalibrationCache(const void* cache, size_t length) noexcept {
  try {
    written_.assign(static_cast<const char*>(cache), static_cast<const char*>(cache) + length);
  } catch (...) {
    written_.clear();
  }
}

void CliCalibrator::save() {
  if (path_.empty() || written_.empty()) return;
  write_file_atomic(path_, written_.data(), written_.size(), "--calib cache");
  info("Calibration cache written to '" + path_ + "'");
}

namespace {

CalibrationAlgoType algo_of(const std::string& name) {
  if (name == "minmax") return CalibrationAlgoType::kMINMAX_CALIBRATION;
  if (name == "percentile") return CalibrationAlgoType::kPERCENTILE_CALIBRATION;
  if (name == "mse") return CalibrationAlgoType::kMSE_CALIBRATION;
  return CalibrationAlgoType::kENTROPY_CALIBRATION_2;
}

// The batch shape each input calibrates at: --optShapesCalib, else profile 0's opt (--optShapes,
// --shapes, or --maxShapes / --minShapes as the profile is filled), else the model's static shape.
std::vector<CalibrationInput> calibration_inputs(const Options& o, const Network& net) {
  std::vector<CalibrationInput> out;
  for (int i = 0; i < net.getNbInputs(); ++i) {
    CalibrationInput in{net.getInputName(i), net.getInputType(i), net.getInputDims(i)};
    for (const std::vector<ShapeMap>* v : {&o.opt_shapes_calib, &o.max_shapes_calib, &o.min_shapes_calib,
                                            &o.opt_shapes, &o.max_shapes, &o.min_shapes}) {
      if (!v->empty() && v->front().count(in.name)) {
        in.shape = v->front().at(in.name);
        break;
      }
    }
    if (o.shapes.count(in.name) && o.opt_shapes_calib.empty() && o.opt_shapes.empty()) in.shape = o.shapes.at(in.name);
    for (int64_t d : in.shape)
      if (d < 0)
        fail("INT8 calibration: input '", in.name, "' has dynamic shape ", dimsToString(in.shape),
             ": give its calibration shape with --optShapesCalib (or --optShapes/--shapes)");
    out.push_back(in);
  }
  return out;
}

void set_calibration_profile(const Options& o, BuilderConfig& config) {
  if (o.min_shapes_calib.empty() && o.opt_shapes_calib.empty() && o.max_shapes_calib.empty()) return;
  OptimizationProfile p;
  auto get = [](const std::vector<ShapeMap>& v) { return v.empty() ? ShapeMap{} : v[0]; };
  ShapeMap mn = get(o.min_shapes_calib), op = get(o.opt_shapes_calib), mx = get(o.max_shapes_calib);
  std::map<std::string, int> names;
  for (const ShapeMap* m : {&mn, &op, &mx}) for (const auto& kv : *m) names[kv.first] = 1;
  for (const auto& [name, _] : names) {
    Dims opt = op.count(name) ? op[name] : mx.count(name) ? mx[name] : mn[name];
    p.setDimensions(name, OptProfileSelector::kMIN, mn.count(name) ? mn[name] : opt);
    p.setDimensions(name, OptProfileSelector::kOPT, opt);
    p.setDimensions(name, OptProfileSelector::kMAX, mx.count(name) ? mx[name] : opt);
  }
  if (!config.setCalibrationProfile(p))
    fail("--minShapesCalib/--optShapesCalib/--maxShapesCalib: need min <= opt <= max of one rank for each input");
}

}  // namespace

std::unique_ptr<CliCalibrator> make_calibrator(const Options& o, const Network& net, BuilderConfig& config) {
  if (!o.int8 && !o.best) return nullptr;
  set_calibration_profile(o, config);
  const CalibrationAlgoType algo = algo_of(o.calib_algo);
  std::unique_ptr<Int8Calibrator> source;
  std::string error;
  struct stat st;
  const bool have_cache = !o.calib.empty() && stat(o.calib.c_str(), &st) == 0;
  if (have_cache) {
    if (!o.calib_images.empty() || !o.calib_data.empty())
      info("--calib: '" + o.calib + "' exists: its scales are used and the calibration data is not read");
  } else if (!o.calib_images.empty()) {
    if (net.getNbInputs() != 1)
      fail("--calibImages: the model has ", net.getNbInputs(), " inputs; images calibrate a model of one image "
           "input (use --calibData with a folder per input)");
    ImageCalibratorOptions io;
    io.directory = o.calib_images;
    io.input = calibration_inputs(o, net)[0];
    io.nhwc = o.calib_layout == "nhwc";
    io.resize = o.calib_resize == "none"        ? ImageCalibratorOptions::Resize::kNONE
                : o.calib_resize == "letterbox" ? ImageCalibratorOptions::Resize::kLETTERBOX
                                                : ImageCalibratorOptions::Resize::kRESIZE_CENTER_CROP;
    io.bgr = o.calib_bgr;
    for (int k = 0; k < 3; ++k) {
      io.mean[k] = static_cast<float>(o.calib_mean[k]);
      io.std[k] = static_cast<float>(o.calib_std[k]);
    }
    io.max_images = o.calib_max_images;
    io.max_batches = o.calib_batches;
    io.algorithm = algo;
    io.quantile = o.calib_percentile;
    source = createImageCalibrator(io, &error);
    if (!source) fail("--calibImages: ", error);
  } else if (!o.calib_data.empty()) {
    TensorFileCalibratorOptions to;
    to.directory = o.calib_data;
    to.inputs = calibration_inputs(o, net);
    to.max_batches = o.calib_batches;
    to.algorithm = algo;
    to.quantile = o.calib_percentile;
    source = createTensorFileCalibrator(to, &error);
    if (!source) fail("--calibData: ", error);
  } else if (!o.calib.empty()) {
    fail("--calib: calibration cache '", o.calib, "' does not exist and there is no calibration data to make it "
         "(--calibImages=<dir> or --calibData=<dir>)");
  } else {
    return nullptr;  // --int8 alone: the builder warns that there are no scales
  }
  if (!o.calib.empty() && !have_cache) check_writable(o.calib, "--calib cache");
  return std::make_unique<CliCalibrator>(o.calib, std::move(source), algo, o.calib_percentile);
}

}  // namespace kiln::cli
