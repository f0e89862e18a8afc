// The tensor-file calibration source (createTensorFileCalibrator): per input, a list of .bin
// (--loadInputs' raw little-endian format) and .npy files, each one batch or one sample, read
// in name order and cut into batches of the input's batch shape.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "kiln/calibrator.h"
#include "quant/calibration_files.h"

namespace kiln {

namespace {

size_t volume(const Dims& d) {
  size_t n = 1;
  for (int64_t x : d) n *= static_cast<size_t>(x);
  return n;
}

struct InputStream {
  CalibrationInput input;
  std::vector<std::string> files;
  size_t next = 0;
  std::vector<uint8_t> pending;  // samples read but not yet handed out
  std::vector<uint8_t> batch;
};

class TensorFileCalibrator : public quant::DataSourceCalibrator {
 public:
  TensorFileCalibrator(TensorFileCalibratorOptions o, std::vector<InputStream> streams)
      : DataSourceCalibrator(o.algorithm, o.quantile), o_(std::move(o)), streams_(std::move(streams)) {}
  int getBatchSize() const noexcept override {
    return streams_.empty() || streams_[0].input.shape.empty() ? 1 : static_cast<int>(streams_[0].input.shape[0]);
  }

  bool getBatch(void* bindings[], const char* names[], int nb) noexcept override {
    error_.clear();
    if (o_.max_batches > 0 && batches_ >= o_.max_batches) return false;
    try {
      for (InputStream& s : streams_) {
        const size_t batch_bytes = volume(s.input.shape) * tensorTypeSize(s.input.type);
        while (s.pending.size() < batch_bytes && s.next < s.files.size()) {
          Status st = read_next(s);
          if (!st) return fail(st.message());
        }
        if (s.pending.size() < batch_bytes) return false;  // out of data (a partial batch is dropped)
        s.batch.assign(s.pending.begin(), s.pending.begin() + static_cast<std::ptrdiff_t>(batch_bytes));
        s.pending.erase(s.pending.begin(), s.pending.begin() + static_cast<std::ptrdiff_t>(batch_bytes));
      }
    } catch (const std::exception& e) {
      return fail(std::string("tensor calibration: ") + e.what());
    }
    ++batches_;
    for (int i = 0; i < nb; ++i)
      for (InputStream& s : streams_)
        if (s.input.name == names[i]) bindings[i] = s.batch.data();
    return true;
  }

 private:
  // Appends the next file's samples; it must hold one sample or one batch of the input.
  Status read_next(InputStream& s) {
    const std::string& path = s.files[s.next++];
    KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, quant::read_file(path));
    const Dims& shape = s.input.shape;
    const size_t elem = tensorTypeSize(s.input.type), batch = volume(shape) * elem, sample = batch / shape[0];
    const std::string want = std::string(tensorTypeName(s.input.type)) + " " + dimsToString(shape);
    if (path.size() > 4 && path.compare(path.size() - 4, 4, ".npy") == 0) {
      KILN_ASSIGN_OR_RETURN(quant::NpyArray a, quant::parse_npy(bytes, path));
      if (a.type != s.input.type)
        return err("'", path, "' holds ", tensorTypeName(a.type), " but input '", s.input.name, "' is ", want);
      Dims tail(shape.begin() + 1, shape.end()), one = shape;
      one[0] = 1;
      if (a.shape != shape && a.shape != tail && a.shape != one)
        return err("'", path, "' has shape ", dimsToString(a.shape), " but input '", s.input.name, "' takes ", want,
                   " (a batch, or one sample ", dimsToString(tail), ")");
      bytes = std::move(a.data);
    } else if (bytes.size() != batch && bytes.size() != sample) {
      return err("'", path, "' has ", bytes.size(), " bytes but input '", s.input.name, "' (", want, ") takes ", batch,
                 " (a batch) or ", sample, " (one sample)");
    }
    s.pending.insert(s.pending.end(), bytes.begin(), bytes.end());
    return Status::ok();
  }

  TensorFileCalibratorOptions o_;
  std::vector<InputStream> streams_;
  int batches_ = 0;
};

bool is_dir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::unique_ptr<Int8Calibrator> createTensorFileCalibrator(const TensorFileCalibratorOptions& o, std::string* error) {
  auto fail = [&](const std::string& m) -> std::unique_ptr<Int8Calibrator> {
    if (error) *error = m;
    return nullptr;
  };
  if (o.inputs.empty()) return fail("tensor calibration: no input to calibrate");
  if (!is_dir(o.directory)) return fail("tensor calibration: '" + o.directory + "' is not a directory");
  std::vector<InputStream> streams;
  for (const CalibrationInput& in : o.inputs) {
    if (in.shape.empty() || std::any_of(in.shape.begin(), in.shape.end(), [](int64_t d) { return d <= 0; }))
      return fail("tensor calibration: input '" + in.name + "' needs a batch shape without dynamic dims, got " +
                  dimsToString(in.shape));
    std::string dir = o.directory + "/" + in.name;
    if (!is_dir(dir)) {
      if (o.inputs.size() > 1)
        return fail("tensor calibration: no directory '" + dir + "' for input '" + in.name + "' (a network of " +
                    std::to_string(o.inputs.size()) + " inputs takes one folder per input)");
      dir = o.directory;
    }
    auto files = quant::list_files(dir, {"bin", "npy"});
    if (!files) return fail("tensor calibration: " + files.status().message());
    if (files->empty()) return fail("tensor calibration: no .bin or .npy file in '" + dir + "' for input '" + in.name + "'");
    streams.push_back({in, std::move(files).value(), 0, {}, {}});
  }
  return std::make_unique<TensorFileCalibrator>(o, std::move(streams));
}

}  // namespace kiln
