// Decodes ONNX TensorProtos into kiln Tensors: raw_data, the typed repeated fields
// (float_data, int32_data for 8/16-bit ints, bool, float16 and bfloat16, int64_data,
// double_data, uint64_data) and external data, which is memory-mapped, not copied.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "ir/tensor.h"
#include "onnx/onnx_pb.h"

namespace kiln::onnx_import {

class ExternalData {
 public:
  explicit ExternalData(std::string base_dir) : base_dir_(std::move(base_dir)) {}
  // The mapping of `location` (relative to the model's folder), opened once.
  Expected<std::shared_ptr<MappedFile>> file(const std::string& location);
  const std::string& base_dir() const { return base_dir_; }
  // Every file opened so far, by location.
  const std::map<std::string, std::shared_ptr<MappedFile>>& files() const { return files_; }

 private:
  std::string base_dir_;
  std::map<std::string, std::shared_ptr<MappedFile>> files_;
};

// `external` may be null when the caller has no model folder (bytes parsed from memory).
Expected<Tensor> decode_tensor(const onnx::TensorProto& proto, ExternalData* external);

// Reads a serialized TensorProto file (the test_data_set_N/input_K.pb layout).
Expected<Tensor> load_tensor_file(const std::string& path);

}  // namespace kiln::onnx_import
